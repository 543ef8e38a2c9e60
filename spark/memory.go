package spark

import (
	"fmt"
	"strconv"
	"strings"
)

// Spark's memory model on Kubernetes (Spark's configuration docs, "spark.driver.memory",
// "spark.driver.memoryOverhead", "spark.driver.memoryOverheadFactor"; the executor's alike):
// the pod's memory limit is memory (the JVM heap) + memoryOverhead (off-heap: native memory,
// thread stacks, Python workers). Without an explicit overhead it is
// max(384 MiB, factor × memory in MiB, truncated), the factor 0.10 for JVM applications and 0.40 for Python and
// R ones. memory defaults to 1g. A kernel OOM kill means the process as a whole outgrew the
// limit: the overhead is what to raise; a java.lang.OutOfMemoryError, the heap (memory).
const (
	mib = int64(1) << 20
	gib = int64(1) << 30

	// MinOverhead is the smallest default memoryOverhead.
	MinOverhead = 384 * mib
	// DefaultMemory is spark.driver.memory's and spark.executor.memory's default.
	DefaultMemory = 1 * gib
)

// OverheadFactor is the default overhead factor of an application type: 0.4 for Python and R,
// 0.1 for the JVM (Java, Scala).
func OverheadFactor(appType string) float64 {
	switch strings.ToLower(appType) {
	case "python", "r":
		return 0.4
	}
	return 0.1
}

// ParseMemory reads a Spark memory string ("4g", "512m", "1024" — MiB without a unit, as
// Spark reads these settings) into bytes.
func ParseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b") // "4gb" is accepted by Spark too
	mult := mib
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, strings.TrimSuffix(t, "k")
	case strings.HasSuffix(t, "m"):
		mult, t = mib, strings.TrimSuffix(t, "m")
	case strings.HasSuffix(t, "g"):
		mult, t = gib, strings.TrimSuffix(t, "g")
	case strings.HasSuffix(t, "t"):
		mult, t = gib<<10, strings.TrimSuffix(t, "t")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("memory %q: not a Spark memory size (e.g. 4g, 512m)", s)
	}
	return n * mult, nil
}

// FormatMemory writes bytes in Spark's units, rounded up to a MiB: "4g" when whole gibibytes,
// else "1433m".
func FormatMemory(b int64) string {
	if b%gib == 0 && b > 0 {
		return strconv.FormatInt(b/gib, 10) + "g"
	}
	return strconv.FormatInt((b+mib-1)/mib, 10) + "m"
}

// RoleMemory is a driver's or executors' memory settings, defaults applied.
type RoleMemory struct {
	Memory, Overhead int64
	// DefaultOverhead is true when no memoryOverhead is set (Spark computes it).
	DefaultOverhead bool
}

// Limit is the pod's memory limit these settings give: memory + memoryOverhead.
func (r RoleMemory) Limit() int64 { return r.Memory + r.Overhead }

// Role returns the pod spec of role ("driver" or "executor"), or false.
func (a *Application) Role(role string) (*PodSpec, bool) {
	switch role {
	case "driver":
		return &a.Spec.Driver, true
	case "executor":
		return &a.Spec.Executor, true
	}
	return nil, false
}

// MemoryOf returns the memory settings of role with Spark's defaults applied.
func (a *Application) MemoryOf(role string) (RoleMemory, error) {
	ps, ok := a.Role(role)
	if !ok {
		return RoleMemory{}, fmt.Errorf("unknown Spark role %q", role)
	}
	r := RoleMemory{Memory: DefaultMemory}
	if ps.Memory != nil {
		m, err := ParseMemory(*ps.Memory)
		if err != nil {
			return r, fmt.Errorf("spec.%s.%w", role, err)
		}
		r.Memory = m
	}
	if ps.MemoryOverhead != nil {
		o, err := ParseMemory(*ps.MemoryOverhead)
		if err != nil {
			return r, fmt.Errorf("spec.%s.memoryOverhead: %w", role, err)
		}
		r.Overhead = o
	} else {
		r.DefaultOverhead = true
		// In whole MiB, truncated, as Spark computes it (Utils.executorMemoryOverhead et al.).
		r.Overhead = max(MinOverhead, int64(OverheadFactor(a.Spec.Type)*float64(r.Memory/mib))*mib)
	}
	return r, nil
}
