package spark

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseAndFormatMemory(t *testing.T) {
	for in, want := range map[string]int64{"4g": 4 << 30, "512m": 512 << 20, "1024": 1 << 30, "2G": 2 << 30, "4gb": 4 << 30, "768k": 768 << 10} {
		got, err := ParseMemory(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "four", "-1g", "4x"} {
		_, err := ParseMemory(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, "4g", FormatMemory(4<<30))
	assert.Equal(t, "1433m", FormatMemory(1433<<20))
	assert.Equal(t, "1m", FormatMemory(1), "rounded up to a MiB")
}

// TestMemoryOf: the pod limit is memory + overhead; the default overhead is max(384m, 10%)
// for the JVM and 40% for Python.
func TestMemoryOf(t *testing.T) {
	s := func(v string) *string { return &v }
	a := &Application{Spec: Spec{Type: "Scala", Driver: PodSpec{Memory: s("4g")}, Executor: PodSpec{Memory: s("8g"), MemoryOverhead: s("2g")}}}
	d, err := a.MemoryOf("driver")
	require.NoError(t, err)
	assert.Equal(t, int64(4<<30), d.Memory)
	assert.Equal(t, int64(409<<20), d.Overhead, "10% of 4g (409m, truncated) is above 384m")
	assert.True(t, d.DefaultOverhead)
	e, err := a.MemoryOf("executor")
	require.NoError(t, err)
	assert.Equal(t, int64(10<<30), e.Limit())
	small := &Application{Spec: Spec{Type: "Scala"}}
	d, err = small.MemoryOf("driver")
	require.NoError(t, err)
	assert.Equal(t, int64(1<<30+384<<20), d.Limit(), "1g default memory, 384m minimum overhead")
	py := &Application{Spec: Spec{Type: "Python", Driver: PodSpec{Memory: s("2g")}}}
	d, err = py.MemoryOf("driver")
	require.NoError(t, err)
	assert.Equal(t, int64(819<<20), d.Overhead, "40% of 2g")
	_, err = a.MemoryOf("worker")
	assert.Error(t, err)
}
