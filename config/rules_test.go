package config_test

import (
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

// The tests of the root rules.yaml and of the schema check against the real detectors.
func init() {
	config.DefaultRegistry = func() config.Detectors { return rules.NewDefaultRegistry() }
}
