package bus

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestDuplicateInProcess: the answer of a replicated stream to a twin of a message being
// stored (another watcher replica's) is recognised, wrapped or not; other API errors are not.
func TestDuplicateInProcess(t *testing.T) {
	inProcess := &jetstream.APIError{Code: 409, ErrorCode: errCodeDuplicateInProcess, Description: "duplicate message id is in process"}
	require.True(t, duplicateInProcess(inProcess))
	require.True(t, duplicateInProcess(fmt.Errorf("publish x: %w", inProcess)))
	require.False(t, duplicateInProcess(&jetstream.APIError{Code: 503, ErrorCode: 10008}))
	require.False(t, duplicateInProcess(jetstream.ErrNoStreamResponse))
	require.False(t, duplicateInProcess(nil))
}
