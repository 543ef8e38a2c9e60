// Package retry is podmedic's one way to wait and try again: exponential backoff on
// k8s.io/apimachinery's wait package, every wait ending when its ctx ends.
package retry

import (
	"context"
	"math"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Exponential is a backoff that starts at initial and doubles up to max, where it stays (no
// limit on the number of steps: the caller's ctx bounds the retries).
func Exponential(initial, max time.Duration) wait.Backoff {
	return wait.Backoff{Duration: initial, Factor: 2, Cap: max, Steps: math.MaxInt32}
}

// Until calls fn at once, then again after each delay of b, until fn reports done or returns
// an error (returned), or ctx ends (ctx.Err() is returned).
func Until(ctx context.Context, b wait.Backoff, fn func(ctx context.Context) (done bool, err error)) error {
	return b.DelayFunc().Until(ctx, true, true, fn)
}

// Delay is the wait of b after the k-th consecutive failure (k >= 1; the first is b.Duration),
// never more than b.Cap when it is set: for callers that schedule their retries instead of
// sleeping (a Nak delay, a paced Slack lane).
func Delay(b wait.Backoff, k int) time.Duration {
	next := b.DelayFunc()
	d := next()
	for i := 1; i < k && (b.Cap <= 0 || d < b.Cap); i++ {
		d = next()
	}
	if b.Cap > 0 {
		d = min(d, b.Cap)
	}
	return d
}

// Sleep waits d; false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
