package rules

// NewDefaultRegistry returns a registry with every detector podmedic ships.
func NewDefaultRegistry() *Registry {
	r := NewRegistry()
	r.Register(OOMKilledPlugin())
	return r
}
