package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDelay(t *testing.T) {
	b := Exponential(250*time.Millisecond, 4*time.Second)
	var got []time.Duration
	for k := 1; k <= 7; k++ {
		got = append(got, Delay(b, k))
	}
	assert.Equal(t, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		4 * time.Second, 4 * time.Second, 4 * time.Second}, got)
	assert.Equal(t, 4*time.Second, Delay(b, 1000))
	assert.Equal(t, time.Second, Delay(Exponential(10*time.Second, time.Second), 1), "never above the cap")
}

func TestUntil(t *testing.T) {
	calls := 0
	err := Until(context.Background(), Exponential(time.Millisecond, 2*time.Millisecond), func(context.Context) (bool, error) {
		calls++
		return calls == 3, nil
	})
	require.NoError(t, err)
	assert.Equal(t, 3, calls)

	boom := errors.New("boom")
	err = Until(context.Background(), Exponential(time.Millisecond, time.Millisecond), func(context.Context) (bool, error) {
		return false, boom
	})
	assert.ErrorIs(t, err, boom)

	// Every wait ends with its ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = Until(ctx, Exponential(time.Hour, time.Hour), func(context.Context) (bool, error) { return false, nil })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestSleep(t *testing.T) {
	assert.True(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.False(t, Sleep(ctx, time.Hour))
}
