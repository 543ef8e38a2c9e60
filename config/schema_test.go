package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/podmedic/podmedic/finding"
)

// The root files, seen from the package directory where go test runs.
const (
	rootRules  = "../rules.yaml"
	rootSchema = "../rules.schema.json"
)

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(rootSchema)
	require.NoError(t, err)
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("rules.schema.json", doc))
	sch, err := c.Compile("rules.schema.json")
	require.NoError(t, err, "the schema itself is invalid")
	return sch
}

// yamlToJSON converts a YAML file to the JSON value the schema validates.
func yamlToJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	j, err := json.Marshal(v)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	require.NoError(t, err)
	return inst
}

// rawSchema is the schema as plain JSON, to compare its enums and properties with the Go types.
func rawSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(rootSchema)
	require.NoError(t, err)
	var s map[string]any
	require.NoError(t, json.Unmarshal(data, &s))
	return s
}

// def returns a subschema by JSON pointer ("/$defs/rule"), following one $ref.
func def(t *testing.T, root map[string]any, s map[string]any) map[string]any {
	t.Helper()
	ref, ok := s["$ref"].(string)
	if !ok {
		return s
	}
	cur := any(root)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		require.True(t, ok, "bad $ref %s", ref)
		cur = m[part]
	}
	out, ok := cur.(map[string]any)
	require.True(t, ok, "bad $ref %s", ref)
	return out
}

func enum(t *testing.T, s map[string]any) []string {
	t.Helper()
	raw, ok := s["enum"].([]any)
	require.True(t, ok, "no enum in %v", s)
	out := make([]string, len(raw))
	for i, v := range raw {
		out[i] = v.(string)
	}
	return out
}

func TestSchemaValidatesRootRulesYAML(t *testing.T) {
	sch := compileSchema(t)
	assert.NoError(t, sch.Validate(yamlToJSON(t, rootRules)))
}

func TestSchemaValidatesGoodFixtures(t *testing.T) {
	sch := compileSchema(t)
	for _, file := range fixtures(t, "good") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			assert.NoError(t, sch.Validate(yamlToJSON(t, file)))
		})
	}
}

// TestSchemaRejectsBadFixtures: the bad fixtures whose problems a schema can express.
func TestSchemaRejectsBadFixtures(t *testing.T) {
	sch := compileSchema(t)
	for _, name := range []string{"budgets", "names", "not_mapping", "no_rules", "params_range",
		"secrets", "typo", "unknown_action", "unknown_keys", "unknown_kind", "urls", "values",
		"version", "version_missing", "wrong_param"} {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, sch.Validate(yamlToJSON(t, filepath.Join("testdata", "bad", name+".yaml"))))
		})
	}
}

func TestSchemaEnums(t *testing.T) {
	s := rawSchema(t)
	defs := s["$defs"].(map[string]any)
	prop := func(d, p string) map[string]any {
		return defs[d].(map[string]any)["properties"].(map[string]any)[p].(map[string]any)
	}
	assert.Equal(t, toStrings(finding.Kinds()), enum(t, prop("detect", "kind")), "kind enum = finding.Kinds()")
	assert.Equal(t, toStrings(finding.ActionTypes()), enum(t, prop("action", "type")))
	assert.Equal(t, toStrings(finding.Modes()), enum(t, prop("action", "mode")))
	assert.Equal(t, toStrings(finding.Severities()), enum(t, defs["severity"].(map[string]any)))
	assert.Equal(t, toStrings(Workloads()), enum(t, prop("match", "workload")))
	airflow := s["properties"].(map[string]any)["airflow"].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, AirflowAPIVersions(), enum(t, airflow["api_version"].(map[string]any)))
}

// TestSchemaCoversConfig walks the Go types and the schema side by side: every object has
// exactly the Go struct's yaml keys, additional properties are refused, and every property
// has a description.
func TestSchemaCoversConfig(t *testing.T) {
	root := rawSchema(t)
	var walk func(typ reflect.Type, s map[string]any, path string)
	walk = func(typ reflect.Type, s map[string]any, path string) {
		s = def(t, root, s)
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() == reflect.Slice {
			items, ok := s["items"].(map[string]any)
			require.True(t, ok, "%s: schema has no items", path)
			walk(typ.Elem(), items, path+"[]")
			return
		}
		if typ.Kind() != reflect.Struct || reflect.PointerTo(typ).Implements(unmarshalerType) {
			return
		}
		props, _ := s["properties"].(map[string]any)
		if typ == detectType {
			assert.Equal(t, false, s["unevaluatedProperties"], "%s: unevaluatedProperties", path)
			walk(reflect.TypeFor[finding.Kind](), props["kind"].(map[string]any), path+".kind")
			return
		}
		assert.Equal(t, false, s["additionalProperties"], "%s: additionalProperties", path)
		var want, got []string
		for _, f := range fields(typ) {
			want = append(want, f.name)
		}
		for k := range props {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		require.Equal(t, want, got, "%s: schema properties = yaml keys of %s", path, typ)
		for _, f := range fields(typ) {
			p := props[f.name].(map[string]any)
			d := p["description"]
			if d == nil {
				d = def(t, root, p)["description"]
			}
			assert.NotEmpty(t, d, "%s.%s has no description", path, f.name)
			walk(typ.FieldByIndex(f.index).Type, p, path+"."+f.name)
		}
	}
	walk(reflect.TypeFor[Config](), root, "")
}

// TestSchemaParamsByType: the params the schema allows per action type are the loader's.
func TestSchemaParamsByType(t *testing.T) {
	s := rawSchema(t)
	action := s["$defs"].(map[string]any)["action"].(map[string]any)
	got := map[finding.ActionType][]string{}
	for _, c := range action["allOf"].([]any) {
		cond := c.(map[string]any)
		typ, ok := cond["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)
		if !ok {
			continue
		}
		params, ok := cond["then"].(map[string]any)["properties"].(map[string]any)["params"].(map[string]any)
		if !ok {
			continue
		}
		got[finding.ActionType(typ["const"].(string))] = enum(t, params["propertyNames"].(map[string]any))
	}
	want := map[finding.ActionType][]string{}
	for typ, ps := range actionParams {
		want[typ] = append([]string{}, ps...)
	}
	for typ := range got {
		if len(got[typ]) == 0 {
			got[typ] = nil
		}
		if len(want[typ]) == 0 {
			want[typ] = nil
		}
	}
	assert.Equal(t, want, got)
}

// schemaThresholds returns the thresholds the schema allows for each kind.
func schemaThresholds(t *testing.T) map[finding.Kind][]string {
	s := rawSchema(t)
	detect := s["$defs"].(map[string]any)["detect"].(map[string]any)
	out := map[finding.Kind][]string{}
	for _, c := range detect["allOf"].([]any) {
		cond := c.(map[string]any)
		kind := cond["if"].(map[string]any)["properties"].(map[string]any)["kind"].(map[string]any)["const"].(string)
		var names []string
		for name, p := range cond["then"].(map[string]any)["properties"].(map[string]any) {
			assert.NotEmpty(t, p.(map[string]any)["description"], "%s.%s has no description", kind, name)
			names = append(names, name)
		}
		sort.Strings(names)
		out[finding.Kind(kind)] = names
	}
	return out
}

// TestSchemaThresholds: for every detector the default registry ships, the schema lists
// exactly the thresholds its args decode.
func TestSchemaThresholds(t *testing.T) {
	inSchema := schemaThresholds(t)
	reg := DefaultRegistry()
	for _, kind := range reg.Kinds() {
		p, _ := reg.Spec(kind)
		var want []string
		if v := reflect.ValueOf(p.NewArgs()); v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
			want = fieldNames(fields(v.Elem().Type()))
		}
		sort.Strings(want)
		if len(want) == 0 {
			want = nil
		}
		assert.Equal(t, want, inSchema[kind], "thresholds of %s in rules.schema.json", kind)
	}
	for kind := range inSchema {
		assert.True(t, slices.Contains(finding.Kinds(), kind), "schema has thresholds for unknown kind %s", kind)
	}
}
