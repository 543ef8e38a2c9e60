package bus

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMsgIDSeparatesResyncEpochs(t *testing.T) {
	o := &Observation{Cluster: "c", UID: "u", ResourceVersion: "7", Type: Updated}
	require.Equal(t, "c/u/7", o.MsgID())
	o.Type = Deleted
	require.Equal(t, "c/u/7/DELETED", o.MsgID())
	o.Type, o.Epoch = Resync, 42
	a := o.MsgID()
	require.Equal(t, "c/u/7/RESYNC/42", a)
	o.Epoch = 43
	require.NotEqual(t, a, o.MsgID(), "the next resync period is a new message")
}
