package yamlconf

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// MaxValueNodes bounds the nodes one value may expand to, YAML aliases
// expanded: ToValue refuses more, and the rules compiler gives each rule
// as much. An alias repeats a value without repeating its text, so a few
// hundred bytes of nested aliases (billion laughs) would otherwise expand
// to millions of values.
const MaxValueNodes = 10000

// maxAliasNodes bounds the nodes the aliases of one file may add to it
// once expanded: Parse refuses more, so that no reader of the nodes (the
// decoders, the compilers) expands a file without bound.
const maxAliasNodes = 10 * MaxValueNodes

// CountNodes counts the nodes of n with aliases expanded, stopping past
// limit (it returns at most about limit+1, whatever the aliases).
func CountNodes(n *yaml.Node, limit int) int {
	n = Resolve(n)
	if n == nil {
		return 0
	}
	total := 1
	for _, c := range n.Content {
		if total > limit {
			break
		}
		total += CountNodes(c, limit-total)
	}
	return total
}

// aliasCheck is checkAliases' walk of a file's nodes as written.
type aliasCheck struct {
	file string
	errs *Errors
	// open holds the nodes being walked (the current node and the ones
	// that contain it): an alias to one of them is a cycle.
	open map[*yaml.Node]bool
	// sizes holds the expanded size of each anchored node walked (at most
	// maxAliasNodes+1).
	sizes map[*yaml.Node]int
	// added is how many nodes the aliases walked so far add to the file.
	added      int
	overBudget bool
}

// checkAliases reports each alias that refers to a value containing it (no
// reader could expand it: they would recurse until the stack overflows)
// and the alias at which the file's aliases add more than maxAliasNodes
// nodes to it. Each alias reported, and every one after the bound, is made
// null, so that what the readers of root go on to check is finite and
// bounded. An alias can only refer to an anchor earlier in the file, so a
// cycle always goes through an alias to a node that contains it.
func checkAliases(file string, root *yaml.Node, errs *Errors) {
	a := aliasCheck{file: file, errs: errs, open: map[*yaml.Node]bool{}, sizes: map[*yaml.Node]int{}}
	a.walk(root)
}

// walk checks n and returns its expanded size (at most maxAliasNodes+1).
func (a *aliasCheck) walk(n *yaml.Node) int {
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		switch {
		case target == nil:
			return 1
		case a.open[target]:
			a.errs.Add(a.file, n, "alias *%s refers to a value that contains it: it would repeat without end", n.Value)
			makeNull(n)
			return 1
		}
		size, ok := a.sizes[target]
		if !ok { // not reached: the anchor is walked before its aliases
			size = min(CountNodes(target, maxAliasNodes), maxAliasNodes+1)
		}
		if a.added+size-1 > maxAliasNodes {
			if !a.overBudget {
				a.overBudget = true
				aliasSize := strconv.Itoa(size)
				if size > maxAliasNodes {
					aliasSize = "more than " + strconv.Itoa(maxAliasNodes)
				}
				a.errs.Add(a.file, n, "YAML aliases expand this file by more than %d nodes (*%s is %s nodes): write the values out, or share less", maxAliasNodes, n.Value, aliasSize)
			}
			makeNull(n)
			return 1
		}
		a.added += size - 1
		return size
	}
	a.open[n] = true
	size := 1
	for _, c := range n.Content {
		size = min(size+a.walk(c), maxAliasNodes+1)
	}
	delete(a.open, n)
	if n.Anchor != "" {
		a.sizes[n] = size
	}
	return size
}

// makeNull turns an alias into a null where it stands.
func makeNull(n *yaml.Node) {
	n.Kind, n.Tag, n.Value, n.Alias = yaml.ScalarNode, "!!null", "", nil
}
