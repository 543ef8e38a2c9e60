package actions

import (
	"errors"
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podmedic/podmedic/config"
)

// MemoryPolicy bounds a memory limit proposal.
type MemoryPolicy struct {
	// BumpRatio multiplies the current limit (default 1.5).
	BumpRatio float64
	// MinBump is the smallest increase (default 256Mi).
	MinBump resource.Quantity
	// MaxLimit caps the proposed limit (default 16Gi).
	MaxLimit resource.Quantity
	// MaxLimitRequestRatio keeps limit/request at or below it (default 1.5), so the scheduler
	// does not overpack nodes with pods whose requests are far below their limits.
	MaxLimitRequestRatio float64
}

// DefaultMemoryPolicy returns the documented defaults.
func DefaultMemoryPolicy() MemoryPolicy {
	return MemoryPolicy{
		BumpRatio:            1.5,
		MinBump:              resource.MustParse("256Mi"),
		MaxLimit:             resource.MustParse("16Gi"),
		MaxLimitRequestRatio: 1.5,
	}
}

// MemoryPolicyOf maps a rule's params onto the policy, keeping defaults for unset ones.
func MemoryPolicyOf(p config.ActionParams) MemoryPolicy {
	mp := DefaultMemoryPolicy()
	if p.BumpRatio != nil {
		mp.BumpRatio = *p.BumpRatio
	}
	if p.MinBump != nil {
		mp.MinBump = p.MinBump.Quantity
	}
	if p.MaxLimit != nil {
		mp.MaxLimit = p.MaxLimit.Quantity
	}
	if p.MaxLimitRequestRatio != nil {
		mp.MaxLimitRequestRatio = *p.MaxLimitRequestRatio
	}
	return mp
}

// MemoryPlanner sizes memory proposals for the rules engine (it implements rules.Planner)
// with ProposeMemoryLimit.
type MemoryPlanner struct{}

// PlanMemory returns the proposal for container c under a rule's params as action params
// (container, limit, request).
func (MemoryPlanner) PlanMemory(c *corev1.Container, p config.ActionParams) (map[string]string, error) {
	mp, err := ProposeMemoryLimit(c, MemoryPolicyOf(p))
	if err != nil {
		return nil, err
	}
	return mp.Params(), nil
}

// MemoryProposal is a proposed memory limit and request for one container.
type MemoryProposal struct {
	Container  string
	OldLimit   *resource.Quantity // nil when the container had no limit
	OldRequest *resource.Quantity // nil when the container had no request
	Limit      resource.Quantity
	Request    resource.Quantity
	// Capped is true when MaxLimit reduced the proposal.
	Capped bool
}

// Params returns the proposal as action parameters (replay and notices).
func (p MemoryProposal) Params() map[string]string {
	return map[string]string{"container": p.Container, "limit": p.Limit.String(), "request": p.Request.String()}
}

// ErrAtMaxLimit is returned when the container's limit is already at or above the policy's cap.
var ErrAtMaxLimit = errors.New("memory limit already at max_limit")

// ErrNoMemoryBaseline is returned when a container has neither a memory limit nor a request.
var ErrNoMemoryBaseline = errors.New("container has no memory limit or request to start from")

// ProposeMemoryLimit computes a higher memory limit for a container that was OOM-killed:
// new limit = max(limit x BumpRatio, limit + MinBump), rounded up to a readable quantity and
// capped at MaxLimit; the request is raised (never lowered) so limit/request <=
// MaxLimitRequestRatio. A container without a limit gets one proposed from its request.
func ProposeMemoryLimit(c *corev1.Container, p MemoryPolicy) (MemoryProposal, error) {
	out := MemoryProposal{Container: c.Name}
	limit, hasLimit := c.Resources.Limits[corev1.ResourceMemory]
	request, hasRequest := c.Resources.Requests[corev1.ResourceMemory]
	if hasLimit {
		out.OldLimit = &limit
	}
	if hasRequest {
		out.OldRequest = &request
	}
	base := limit
	if !hasLimit {
		if !hasRequest {
			return out, ErrNoMemoryBaseline
		}
		base = request
	}
	maxBytes := p.MaxLimit.Value()
	if base.Value() >= maxBytes {
		return out, fmt.Errorf("%w (%s >= %s)", ErrAtMaxLimit, base.String(), p.MaxLimit.String())
	}
	bumped := math.Max(float64(base.Value())*p.BumpRatio, float64(base.Value()+p.MinBump.Value()))
	newLimit := roundUpReadable(int64(math.Ceil(bumped)))
	if newLimit > maxBytes {
		newLimit, out.Capped = maxBytes, true
	}
	out.Limit = *readable(newLimit)

	minRequest := int64(math.Ceil(float64(newLimit) / p.MaxLimitRequestRatio))
	switch {
	case hasRequest && request.Value() > newLimit:
		out.Request = out.Limit
	case hasRequest && request.Value() >= minRequest:
		out.Request = request
	default:
		r := roundUpReadable(minRequest)
		if r > newLimit {
			r = newLimit
		}
		out.Request = *readable(r)
	}
	return out, nil
}

const (
	mi = int64(1) << 20
	gi = int64(1) << 30
)

// roundUpReadable rounds bytes up to a step that reads well: 64Mi below 1Gi, 128Mi below 4Gi,
// 256Mi below 16Gi, 1Gi above.
func roundUpReadable(b int64) int64 {
	step := gi
	switch {
	case b <= gi:
		step = 64 * mi
	case b <= 4*gi:
		step = 128 * mi
	case b <= 16*gi:
		step = 256 * mi
	}
	return (b + step - 1) / step * step
}

// readable returns b as a binary-SI quantity: "3Gi", "2304Mi".
func readable(b int64) *resource.Quantity { return resource.NewQuantity(b, resource.BinarySI) }
