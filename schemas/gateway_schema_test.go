package schemas_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hookline/hookline/gateway"
	"github.com/hookline/hookline/schemas"
)

// The gateway schema lists exactly the keys gateway.yaml's strict decoder
// accepts, at the top and in every section that is a plain struct.
func TestGatewaySchemaMatchesFile(t *testing.T) {
	d := loadSchema(t, "gateway.schema.json")
	file := reflect.TypeFor[gateway.File]()
	if got, want := d.props(t), yamlKeys(file); !slices.Equal(got, want) {
		t.Errorf("schema lists %v, gateway.File accepts %v", got, want)
	}
	sections := 0
	for i := range file.NumField() {
		f := file.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Type.Kind() != reflect.Struct || name == "" {
			continue
		}
		sections++
		t.Run(name, func(t *testing.T) {
			if got, want := d.props(t, "properties", name), yamlKeys(f.Type); !slices.Equal(got, want) {
				t.Errorf("schema %s lists %v, the decoder accepts %v", name, got, want)
			}
		})
	}
	if sections < 5 {
		t.Errorf("found %d struct sections in gateway.File, want intake, delivery, loop_guard, egress and retention", sections)
	}
}

func TestGatewaySchemaRetention(t *testing.T) {
	r := newRegistry(t)
	const base = "connectors: [\"connectors/*.yaml\"]\nrules: [\"rules/*.yaml\"]\nretention:\n"
	cases := []struct {
		name, yaml, pointer string // pointer "": valid
	}{
		{"documented", "  inbox: 30d\n  events: 90d\n  deliveries: 30d\n  interval: 10m\n", ""},
		{"forever", "  inbox: forever\n  events: 0\n  deliveries: \"0\"\n", ""},
		{"hours and weeks", "  inbox: 36h\n  events: 2w\n  deliveries: 1.5d\n", ""},
		{"empty", "  {}\n", ""},
		{"words", "  inbox: 30 days\n", "/retention/inbox"},
		{"never", "  events: never\n", "/retention/events"},
		{"negative", "  deliveries: -5d\n", "/retention/deliveries"},
		{"a list", "  inbox: [30d]\n", "/retention/inbox"},
		{"interval forever", "  interval: forever\n", "/retention/interval"},
		{"misspelt key", "  evnets: 90d\n", "/retention"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPointer(t, r.ValidateConfig("gateway", yamlValue(t, []byte(base+tc.yaml))), tc.pointer)
		})
	}
}

// checkPointer fails unless err is nil (pointer "": the document is
// valid) or a *schemas.ValidationError at pointer.
func checkPointer(t *testing.T, err error, pointer string) {
	t.Helper()
	if pointer == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ValidateConfig = %v, want a *ValidationError", err)
	}
	if ve.Pointer != pointer {
		t.Errorf("pointer %q (%s), want %q", ve.Pointer, ve.Reason, pointer)
	}
}
