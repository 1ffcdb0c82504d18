package yamlconf

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a config file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"column"`
}

// At returns the position of node n in file.
func At(file string, n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: n.Line, Col: n.Column}
}

// String renders the position as file:line:column.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one config problem at one position.
type Error struct {
	Pos Pos    `json:"pos"`
	Msg string `json:"message"`
}

// Error renders file:line:column: message.
func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Errorf builds an Error at the position of node n.
func Errorf(file string, n *yaml.Node, format string, args ...any) *Error {
	return &Error{Pos: At(file, n), Msg: fmt.Sprintf(format, args...)}
}

// Errors is a list of config problems. The zero value is an empty list.
type Errors []*Error

// Add appends an error built like Errorf.
func (es *Errors) Add(file string, n *yaml.Node, format string, args ...any) {
	*es = append(*es, Errorf(file, n, format, args...))
}

// Append adds all errors of other.
func (es *Errors) Append(other Errors) { *es = append(*es, other...) }

// Sort orders errors by file, line and column.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i].Pos, es[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Error joins all problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil for an empty list and the list itself otherwise.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
