package actions

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBudgetsSlidingWindow(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	b := NewBudgets(NewMemoryKV(), "", clk.now)
	total := []BudgetScope{{Scope: ScopeTotal, Limit: Limit{Max: 3, Window: 10 * time.Minute}}}

	// Three actions at 0, 4 and 8 minutes fill the window.
	for i, at := range []time.Duration{0, 4 * time.Minute, 4 * time.Minute} {
		clk.advance(at)
		_, err := b.Reserve(ctx, fmt.Sprintf("a%d", i), total)
		require.NoError(t, err)
	}
	_, err := b.Reserve(ctx, "a3", total)
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	require.Equal(t, clk.now().Add(2*time.Minute), be.NextSlot, "the oldest action leaves the window at 10m")

	// At 9m59s the first action is still inside the window: no fixed bucket boundary lets
	// a fourth one through.
	clk.advance(time.Minute + 59*time.Second)
	_, err = b.Reserve(ctx, "a3", total)
	require.ErrorIs(t, err, ErrBudgetExhausted)
	// At 10m it has left; exactly one slot is free.
	clk.advance(time.Second)
	_, err = b.Reserve(ctx, "a3", total)
	require.NoError(t, err)
	_, err = b.Reserve(ctx, "a4", total)
	require.ErrorIs(t, err, ErrBudgetExhausted)
}

func TestBudgetsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	b := NewBudgets(NewMemoryKV(), "", nil)
	rule := BudgetScope{Scope: ScopeRule, Name: "r", Limit: Limit{Max: 5, Window: time.Hour}}
	ns := BudgetScope{Scope: ScopeNamespace, Name: "airflow", Limit: Limit{Max: 5, Window: time.Hour}}
	total := BudgetScope{Scope: ScopeTotal, Limit: Limit{Max: 1, Window: time.Hour}}
	_, err := b.Reserve(ctx, "first", []BudgetScope{total})
	require.NoError(t, err)

	// The total refuses: the rule and namespace slots taken before are given back.
	_, err = b.Reserve(ctx, "second", []BudgetScope{rule, ns, total})
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	require.Equal(t, ScopeTotal, be.Scope)
	for _, s := range []BudgetScope{rule, ns} {
		n, err := b.Used(ctx, s)
		require.NoError(t, err)
		require.Zero(t, n, s.Scope)
	}

	// A release gives every slot back; an id counts once.
	release, err := b.Reserve(ctx, "third", []BudgetScope{rule, ns})
	require.NoError(t, err)
	_, err = b.Reserve(ctx, "third", []BudgetScope{rule, ns})
	require.NoError(t, err)
	n, _ := b.Used(ctx, rule)
	require.Equal(t, 1, n, "a retried id is counted once")
	require.NoError(t, release(ctx))
	n, _ = b.Used(ctx, rule)
	require.Zero(t, n)
}

// TestBudgetsConcurrent: 50 workers race for a budget of 5: exactly 5 win.
func TestBudgetsConcurrent(t *testing.T) {
	b := NewBudgets(NewMemoryKV(), "", nil)
	scopes := []BudgetScope{
		{Scope: ScopeRule, Name: "r", Limit: Limit{Max: 5, Window: time.Hour}},
		{Scope: ScopeTotal, Limit: Limit{Max: 7, Window: time.Hour}},
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if _, err := b.Reserve(context.Background(), fmt.Sprintf("a%d", i), scopes); err == nil {
				won.Add(1)
			} else {
				require.ErrorIs(t, err, ErrBudgetExhausted)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(5), won.Load())
	n, _ := b.Used(context.Background(), scopes[1])
	require.Equal(t, 5, n, "the refused ones gave their total slots back")
}
