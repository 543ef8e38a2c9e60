// Package podmedic embeds the default rules.yaml (the commented file at the repository root),
// which demo and replay use when no --config is given and the Helm chart ships.
package podmedic

import _ "embed"

// DefaultRulesFile is the name the embedded default rules are reported under.
const DefaultRulesFile = "rules.yaml (embedded default)"

//go:embed rules.yaml
var defaultRules []byte

// DefaultRules returns a copy of the embedded default rules.yaml.
func DefaultRules() []byte { return append([]byte(nil), defaultRules...) }
