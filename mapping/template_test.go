package mapping

import "testing"

// A template compares a payload's values as they come: a JSON number with
// a number literal, an absent value with a boolean. Neither fails the
// payload (text/template's eq would: json.Number against int).
func TestTemplateComparisons(t *testing.T) {
	const payload = `{"priority": 4, "score": 2.50, "count": "12", "status": "open", "vip": true}`
	runFieldCases(t, payload, []fieldCase{
		{name: "json number eq int", spec: `'{{ if eq (.Path "priority") 4 }}urgent{{ else }}normal{{ end }}'`, want: "urgent"},
		{name: "json number eq other int", spec: `'{{ if eq (.Path "priority") 1 2 }}low{{ else }}high{{ end }}'`, want: "high"},
		{name: "json number eq float", spec: `'{{ eq (.Path "score") 2.5 }}'`, want: "true"},
		{name: "numeric text gt int", spec: `'{{ gt (.Path "count") 9 }}'`, want: "true"},
		{name: "json number ge", spec: `'{{ ge (.Path "priority") 3 }}/{{ lt (.Path "priority") 3 }}'`, want: "true/false"},
		{name: "absent eq bool", spec: `'{{ if eq (.Path "missing") true }}yes{{ else }}no{{ end }}'`, want: "no"},
		{name: "present eq bool", spec: `'{{ if eq (.Path "vip") true }}yes{{ else }}no{{ end }}'`, want: "yes"},
		{name: "absent lt int", spec: `'{{ lt (.Path "missing") 3 }}'`, want: "false"},
		{name: "word eq int", spec: `'{{ eq (.Path "status") 4 }}/{{ ne (.Path "status") 4 }}'`, want: "false/true"},
		{name: "template of a number eq int", spec: `'{{ eq (printf "%v" (.Path "priority")) 4 }}'`, want: "true"},
	}, nil)
}

// join and printf print a payload's whole number 1e6 as every other
// template output does: 1000000.
func TestTemplatePrintFunctionsWholeNumbers(t *testing.T) {
	const payload = `{"ids": [1e6, 2], "n": 1e6}`
	runFieldCases(t, payload, []fieldCase{
		{name: "join", spec: `'{{ join "," (.Path "ids") }}'`, want: "1000000,2"},
		{name: "printf %v", spec: `'{{ printf "%v" (.Path "n") }}'`, want: "1000000"},
		{name: "print", spec: `'{{ print (.Path "n") }}'`, want: "1000000"},
	}, nil)
}
