package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestValidate checks one rule of validation per case: each document is parsed and the
// errors must be exactly want (one per line, "-" when the document is valid).
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want string
	}{
		{"valid", `
version: 1
rules: [{name: oom, detect: {kind: OOMKilled}}]`, "-"},
		{"no rules key", `
version: 1`, "x.yaml:2:1: rules: at least one rule is required"},
		{"rules null", `
version: 1
rules:`, "x.yaml:3:7: rules: at least one rule is required"},
		{"rule name with dots", `
version: 1
rules: [{name: oom.kill, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:16: rules[0].name: invalid rule name "oom.kill": use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)`},
		{"rule name of 63 characters", `
version: 1
rules: [{name: ` + strings.Repeat("a", 63) + `, detect: {kind: OOMKilled}}]`, "-"},
		{"rule name of 64 characters", `
version: 1
rules: [{name: ` + strings.Repeat("a", 64) + `, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:16: rules[0].name: invalid rule name "` + strings.Repeat("a", 64) + `": use lowercase letters, digits and '-', starting and ending with a letter or digit (at most 63 characters)`},
		{"every severity", `
version: 1
rules:
  - {name: a, severity: info, detect: {kind: OOMKilled}}
  - {name: b, severity: warning, detect: {kind: OOMKilled}}
  - {name: c, severity: critical, detect: {kind: OOMKilled}}
  - {name: d, severity: Critical, detect: {kind: OOMKilled}}`,
			`x.yaml:7:25: rules[3].severity: invalid severity "Critical" (valid: info, warning, critical)`},
		{"every workload", `
version: 1
rules:
  - {name: a, match: {workload: any}, detect: {kind: OOMKilled}}
  - {name: b, match: {workload: airflow}, detect: {kind: OOMKilled}}
  - {name: c, match: {workload: spark}, detect: {kind: OOMKilled}}
  - {name: d, match: {workload: flink}, detect: {kind: OOMKilled}}`,
			`x.yaml:7:33: rules[3].match.workload: invalid workload "flink" (valid: any, airflow, spark)`},
		{"mode notify with an action other than notify", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: delete-pod, mode: notify}}]`, "-"},
		{"force in approve mode", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: delete-pod, params: {force: true}}}]`, "-"},
		{"force false in auto mode", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: delete-pod, mode: auto, params: {force: false}}}]`, "-"},
		{"grace period 0", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: evict-pod, params: {grace_period: 0}}}]`, "-"},
		{"max_limit_request_ratio 1", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: propose-memory-limit, params: {max_limit_request_ratio: 1}}}]`, "-"},
		{"bump_ratio just above 1", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: propose-memory-limit, params: {bump_ratio: 1.01}}}]`, "-"},
		{"bump_ratio below 1", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: propose-memory-limit, params: {bump_ratio: 0.5}}}]`,
			"x.yaml:3:104: rules[0].action.params.bump_ratio: must be greater than 1 (1.5 raises the limit by half)"},
		{"ratios that are not finite", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: propose-memory-limit, params: {bump_ratio: .inf, max_limit_request_ratio: .nan}}}]`,
			`x.yaml:3:104: rules[0].action.params.bump_ratio: must be a finite number
x.yaml:3:135: rules[0].action.params.max_limit_request_ratio: must be a finite number`},
		{"airflow-clear-task with airflow.url", `
version: 1
airflow: {url: "http://airflow-webserver.airflow.svc:8080"}
rules: [{name: a, detect: {kind: TaskFailed}, action: {type: airflow-clear-task}}]`, "-"},
		{"airflow api v2 over https", `
version: 1
airflow: {url: "https://airflow.example.com/", api_version: v2}
rules: [{name: a, detect: {kind: TaskFailed}, action: {type: airflow-clear-task}}]`, "-"},
		{"airflow url without host", `
version: 1
airflow: {url: "http://"}
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:16: airflow.url: invalid URL "http://": must be an absolute http:// or https:// URL`},
		{"empty airflow url", `
version: 1
airflow: {url: ""}
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:16: airflow.url: invalid URL "": must be an absolute http:// or https:// URL`},
		{"slack api_url of a local test server", `
version: 1
slack: {api_url: "http://127.0.0.1:9999/api/"}
rules: [{name: a, detect: {kind: OOMKilled}}]`, "-"},
		{"route severities", `
version: 1
slack:
  routes: [{name: r, channel: "#c", severities: [info, warning, critical, debug]}]
rules: [{name: a, detect: {kind: OOMKilled}, notify: {route: r}}]`,
			`x.yaml:4:75: slack.routes[0].severities[3]: invalid severity "debug" (valid: info, warning, critical)`},
		{"empty default channel", `
version: 1
slack: {default_channel: ""}
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:26: slack.default_channel: must not be empty`},
		{"empty notify channel", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, notify: {channel: ''}}]`,
			`x.yaml:3:64: rules[0].notify.channel: must not be empty`},
		{"disabled rules are validated too", `
version: 1
rules: [{name: a, disabled: true, detect: {kind: OOMKilled}, notify: {route: nope}}]`,
			`x.yaml:3:78: rules[0].notify.route: route "nope" is not defined in slack.routes (no routes are defined)`},
		{"thresholds of a valid kind are validated", `
version: 1
rules: [{name: a, detect: {kind: InitStuck, init_timeout: 0s}}]`,
			`x.yaml:3:59: rules[0].detect.init_timeout: must be greater than 0`},
		{"a threshold error is positioned at its key", `
version: 1
rules: [{name: a, detect: {kind: TaskFailed, reasons: [""]}}]`,
			`x.yaml:3:55: rules[0].detect.reasons: must not hold an empty reason`},
		{"secret in action params", `
version: 1
rules: [{name: a, detect: {kind: OOMKilled}, action: {type: notify, params: {token: x}}}]`,
			`x.yaml:3:78: rules[0].action.params.token: unknown field: secrets are not read from rules.yaml; set them in the environment: SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_SIGNING_SECRET, AIRFLOW_USERNAME and AIRFLOW_PASSWORD or AIRFLOW_TOKEN (or their *_FILE variants naming mounted files)`},
		{"top-level token", `
version: 1
token: x
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:1: token: unknown field: secrets are not read from rules.yaml; set SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN_FILE naming a mounted file) in the environment`},
		{"a typo does not also report the field as missing", `
version: 1
rules: [{nme: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:10: rules[0].nme: unknown field (did you mean name?)`},
		{"durations in days", `
version: 1
cooldown: 2d
proposals: {ttl: 1.5d}
budgets: {total: {max: 1, window: 106752d}}
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:4:18: proposals.ttl: invalid duration "1.5d" (use e.g. 90s, 15m, 1h30m, 2d)
x.yaml:5:35: budgets.total.window: invalid duration "106752d": too long`},
		{"version as a string", `
version: "1"
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:2:10: version: expected an integer, got "1"`},
		{"a list where a rule should be", `
version: 1
rules: [[name, a]]`,
			`x.yaml:3:9: rules[0]: expected a mapping, got a list`},
		{"a key that is not a string", `
version: 1
? [a, b]
: c
rules: [{name: a, detect: {kind: OOMKilled}}]`,
			`x.yaml:3:3: a key must be a plain string, got a list`},
		{"self-referencing merge", `
version: 1
rules:
  - &r
    name: a
    detect: {kind: OOMKilled}
    match:
      <<: *r`,
			`x.yaml:8:11: rules[0].match: alias *r refers to itself`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("x.yaml", []byte(tc.doc+"\n"), testRegistry())
			if tc.want == "-" {
				require.NoError(t, err)
				require.NotNil(t, cfg)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

// TestAliasBomb: aliases cannot make a small file decode into an enormous config.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nx: &s kube-system\ny: &ns [" + strings.Repeat("*s, ", 999) + "*s]\nrules:\n")
	b.WriteString("  - &r {name: a, detect: {kind: OOMKilled}, match: {namespaces: {exclude: *ns}}}\n")
	b.WriteString("  - " + strings.Repeat("*r\n  - ", 499) + "*r\n")
	_, err := Parse("x.yaml", []byte(b.String()), testRegistry())
	require.Error(t, err)
	assert.Contains(t, err.Error(), ": the document expands into too many nodes (aliases nested too deep)")
}

// TestActionParamsCovered keeps the table of params per action type in step with
// ActionParams: every param applies to some action type, every type is in the table.
func TestActionParamsCovered(t *testing.T) {
	for _, f := range fields(reflect.TypeFor[ActionParams]()) {
		found := false
		for _, ps := range actionParams {
			found = found || slices.Contains(ps, f.name)
		}
		assert.True(t, found, "param %s applies to no action type: add it to actionParams", f.name)
	}
	for _, typ := range finding.ActionTypes() {
		_, ok := actionParams[typ]
		assert.True(t, ok, "action type %s is missing from actionParams", typ)
	}
	assert.Len(t, actionParams, len(finding.ActionTypes()))
}

// TestConfigFieldsHaveYAMLNames guards the strict decoder: a field without a yaml tag would be
// decoded under its lowercased Go name, which is never what rules.yaml means.
func TestConfigFieldsHaveYAMLNames(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || reflect.PointerTo(typ).Implements(unmarshalerType) {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			if !f.IsExported() || tag == "-" {
				continue
			}
			assert.NotEmpty(t, tag, "%s.%s has no yaml tag", path, f.Name)
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[Config](), "Config")
}

type richInline struct {
	Base int `yaml:"base"`
}

// richArgs has every shape of field a detector's args may use.
type richArgs struct {
	richInline `yaml:",inline"`
	Labels     map[string]string `yaml:"labels"`
	Nested     struct {
		Limit *Quantity `yaml:"limit"`
	} `yaml:"nested"`
	Extra   any `yaml:"extra"`
	Untaged int
}

func (*richArgs) Validate() []FieldError {
	return []FieldError{{Field: "nested.limit", Message: "checked"}, {Field: "", Message: "whole block"}}
}

// TestDecodeArgsShapes: detector args are decoded by their yaml tags whatever their shape.
func TestDecodeArgsShapes(t *testing.T) {
	reg := Specs{{Kind: finding.CrashLoop, DefaultArgs: func() Args { return &richArgs{} }}}
	doc := `version: 1
rules:
  - name: a
    detect:
      kind: CrashLoop
      base: 3
      labels: {team: data, tier: [x]}
      nested: {limit: 2Gi, limt: 1}
      extra: {any: [thing]}
      untaged: 4
      Untaged: 5
`
	_, err := Parse("x.yaml", []byte(doc), reg)
	assert.EqualError(t, err, `x.yaml:4:5: rules[0].detect: whole block
x.yaml:7:34: rules[0].detect.labels.tier: expected a string, got a list
x.yaml:8:23: rules[0].detect.nested.limit: checked
x.yaml:8:28: rules[0].detect.nested.limt: unknown field (did you mean limit?)
x.yaml:11:7: rules[0].detect.Untaged: unknown field (did you mean untaged?) (valid for CrashLoop: base, labels, nested, extra, untaged)`)

	args := &richArgs{}
	d := &decoder{src: newSource("x.yaml", nil), reg: reg, budget: 1000}
	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("base: 3\nlabels: {team: data}\nnested: {limit: 2Gi}\nextra: {any: [thing]}\nuntaged: 4\n"), &root))
	d.decodeValue(root.Content[0], reflect.ValueOf(args).Elem(), "")
	require.Empty(t, d.src.errs)
	assert.Equal(t, 3, args.Base)
	assert.Equal(t, map[string]string{"team": "data"}, args.Labels)
	assert.Equal(t, "2Gi", args.Nested.Limit.String())
	assert.Equal(t, map[string]any{"any": []any{"thing"}}, args.Extra)
	assert.Equal(t, 4, args.Untaged)
}
