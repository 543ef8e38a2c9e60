package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Duration is a time.Duration written as a Go duration string ("90s", "15m", "1h30m") or with
// a day suffix ("2d").
type Duration struct{ time.Duration }

// ParseDuration parses a Duration string.
func ParseDuration(s string) (Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return Duration{}, fmt.Errorf("invalid duration %q (use e.g. 90s, 15m, 1h30m, 2d)", s)
		}
		if n > int(math.MaxInt64/int64(24*time.Hour)) {
			return Duration{}, fmt.Errorf("invalid duration %q: too long", s)
		}
		return Duration{time.Duration(n) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q (use e.g. 90s, 15m, 1h30m, 2d)", s)
	}
	if d < 0 {
		return Duration{}, fmt.Errorf("invalid duration %q: negative", s)
	}
	return Duration{d}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return fmt.Errorf("expected a duration string such as 15m")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// IsZero reports whether d is unset (for omitempty).
func (d Duration) IsZero() bool { return d.Duration == 0 }

// Quantity is a Kubernetes resource quantity such as 256Mi, 1500M or 2.5Gi.
type Quantity struct{ resource.Quantity }

// MustQuantity parses s or panics; for defaults.
func MustQuantity(s string) Quantity { return Quantity{resource.MustParse(s)} }

// UnmarshalYAML implements yaml.Unmarshaler.
func (q *Quantity) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return fmt.Errorf("expected a quantity such as 256Mi")
	}
	v, err := resource.ParseQuantity(n.Value)
	if err != nil {
		return fmt.Errorf("invalid quantity %q (use e.g. 256Mi, 2Gi, 1500M)", n.Value)
	}
	if v.Sign() < 0 {
		return fmt.Errorf("invalid quantity %q: negative", n.Value)
	}
	q.Quantity = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (q Quantity) MarshalYAML() (any, error) { return q.String(), nil }

// IsZero reports whether q is unset (for omitempty).
func (q Quantity) IsZero() bool { return q.Quantity.IsZero() }
