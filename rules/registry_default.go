package rules

// NewDefaultRegistry returns a registry with every detector podmedic ships, in the order of
// finding.Kinds.
func NewDefaultRegistry() *Registry {
	r := NewRegistry()
	r.Register(OOMKilledPlugin())
	r.Register(SIGKILLPlugin())
	r.Register(InitStuckPlugin())
	r.Register(EvictedPlugin())
	r.Register(TaskFailedPlugin())
	r.Register(PVCPendingPlugin())
	r.Register(VolumeMountFailedPlugin())
	r.Register(CrashLoopPlugin())
	r.Register(StuckTerminatingPlugin())
	r.Register(UnschedulablePlugin())
	r.Register(LimitRatioPlugin())
	r.Register(SparkAppFailedPlugin())
	return r
}
