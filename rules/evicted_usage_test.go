package rules

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEvictedUsageAdvice(t *testing.T) {
	above := usageAdvice("base", "3145728Ki", "2Gi", "memory")
	require.Contains(t, above, "container base used 3.0Gi of memory against a request of 2Gi")
	require.Contains(t, above, "raise the request towards the usage")

	within := usageAdvice("spark-kubernetes-executor", "6012340Ki", "6Gi", "memory")
	require.Contains(t, within, "within its request of 6Gi")
	require.NotContains(t, within, "raise the request")
}
