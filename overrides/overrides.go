// Package overrides keeps memory overrides: an approved raise of the memory of one Airflow
// task's container, applied to the pods of the task's next tries by the admission webhook
// (package webhook). An override is (cluster, namespace, dag_id, task_id, container) -> a
// memory limit and request, with the proposal that made it, who approved it, and when it
// expires. They live in a NATS KV bucket (compare-and-set, shared by every replica, kept
// across restarts); every replica answers admissions from a Cache that watches the bucket.
//
// Overrides never lower memory: a second raise of the same task keeps the higher values, and
// the webhook never sets less than a pod already asks for.
package overrides

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultTTL is how long an override applies when rules.yaml says nothing (overrides.ttl).
const DefaultTTL = 30 * 24 * time.Hour

// AnnotationOverride is set on a pod the webhook raised: the override's id.
const AnnotationOverride = "podmedic.io/memory-override"

// Task identifies the container of an Airflow task whose memory an override raises. DagID and
// TaskID are the exact ids (the worker pod's annotations; the labels are label-safe forms).
//
// An override targets either a container of the task's worker pods (Container) or, for a
// SparkApplication the task creates (SparkKubernetesOperator), a Spark role of it (Role:
// driver or executor), whose memory and memoryOverhead it sets.
type Task struct {
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	DagID     string `json:"dag_id"`
	TaskID    string `json:"task_id"`
	Container string `json:"container,omitempty"`
	Role      string `json:"spark_role,omitempty"`
}

func (t Task) String() string {
	return fmt.Sprintf("%s/%s %s.%s %s", t.Cluster, t.Namespace, t.DagID, t.TaskID, t.Of())
}

// Of names what the override raises: "container base" or "Spark driver".
func (t Task) Of() string {
	if t.Role != "" {
		return "Spark " + t.Role
	}
	return "container " + t.Container
}

// Column names it in one word, for tables: the container's name or "spark:driver".
func (t Task) Column() string {
	if t.Role != "" {
		return "spark:" + t.Role
	}
	return t.Container
}

// ID is the override's id: the same for every raise of the same task's container (or Spark
// role), so a later raise updates the override instead of adding a second one. It is a valid
// KV key.
func (t Task) ID() string {
	parts := []string{t.Cluster, t.Namespace, t.DagID, t.TaskID, t.Container}
	if t.Role != "" {
		parts = append(parts, "spark:"+t.Role)
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "o-" + hex.EncodeToString(h[:8])
}

// Override is one task container's raised memory.
type Override struct {
	ID   string `json:"id"`
	Task Task   `json:"task"`
	// Limit and Request are Kubernetes quantities (e.g. 3Gi). For a Spark role, Limit is the
	// pod's limit its settings give (memory + memoryOverhead), and Memory and MemoryOverhead
	// are the settings, in Spark's units (4g, 2688m).
	Limit          string `json:"limit"`
	Request        string `json:"request,omitempty"`
	Memory         string `json:"memory,omitempty"`
	MemoryOverhead string `json:"memory_overhead,omitempty"`
	// Rule is the rule whose proposal made it; MaxLimit is that rule's max_limit at approval.
	// The webhook never sets more than MaxLimit, nor than the rule's max_limit in force at
	// admission (rules.yaml may have lowered it since).
	Rule     string `json:"rule,omitempty"`
	MaxLimit string `json:"max_limit,omitempty"`
	// Pod is the worker pod whose OOM kill made (or last raised) it, in the task's namespace.
	Pod string `json:"pod,omitempty"`
	// ProposalID is the proposal whose approval made (or last raised) it.
	ProposalID string    `json:"proposal_id"`
	ApprovedBy string    `json:"approved_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	RevokedBy  string    `json:"revoked_by,omitempty"`
}

// Active reports whether the override applies at now: not revoked, not expired.
func (o *Override) Active(now time.Time) bool {
	return o.RevokedAt.IsZero() && now.Before(o.ExpiresAt)
}

// State names the override's state at now: active, expired or revoked.
func (o *Override) State(now time.Time) string {
	switch {
	case !o.RevokedAt.IsZero():
		return "revoked"
	case !now.Before(o.ExpiresAt):
		return "expired"
	}
	return "active"
}

// Quantities returns the limit, request and max limit as quantities (a zero request or max
// limit when unset).
func (o *Override) Quantities() (limit, request, maxLimit resource.Quantity, err error) {
	if limit, err = resource.ParseQuantity(o.Limit); err != nil {
		return limit, request, maxLimit, fmt.Errorf("override %s: limit %q: %w", o.ID, o.Limit, err)
	}
	if o.Request != "" {
		if request, err = resource.ParseQuantity(o.Request); err != nil {
			return limit, request, maxLimit, fmt.Errorf("override %s: request %q: %w", o.ID, o.Request, err)
		}
	}
	if o.MaxLimit != "" {
		if maxLimit, err = resource.ParseQuantity(o.MaxLimit); err != nil {
			return limit, request, maxLimit, fmt.Errorf("override %s: max_limit %q: %w", o.ID, o.MaxLimit, err)
		}
	}
	return limit, request, maxLimit, nil
}

// Validate checks what an override must hold before it is stored.
func (o *Override) Validate() error {
	t := o.Task
	switch {
	case t.Namespace == "" || t.DagID == "" || t.TaskID == "" || (t.Container == "") == (t.Role == ""):
		return fmt.Errorf("override: namespace, dag_id, task_id and a container or a Spark role are required (got %s)", t)
	case t.Role != "" && (o.Memory == "" || o.MemoryOverhead == ""):
		return fmt.Errorf("override %s: a Spark role's override needs memory and memoryOverhead", o.ID)
	case o.ID != t.ID():
		return fmt.Errorf("override: id %q is not the task's (%s)", o.ID, t.ID())
	case o.ExpiresAt.IsZero():
		return errors.New("override: no expiry")
	}
	limit, request, maxLimit, err := o.Quantities()
	if err != nil {
		return err
	}
	if limit.Sign() <= 0 {
		return fmt.Errorf("override %s: limit %s is not positive", o.ID, o.Limit)
	}
	if o.Request != "" && request.Cmp(limit) > 0 {
		return fmt.Errorf("override %s: request %s above limit %s", o.ID, o.Request, o.Limit)
	}
	if o.MaxLimit != "" && limit.Cmp(maxLimit) > 0 {
		return fmt.Errorf("override %s: limit %s above max_limit %s", o.ID, o.Limit, o.MaxLimit)
	}
	return nil
}

// raise returns cur raised to next's values, never lowered: the higher limit and request,
// next's proposal, approver and expiry. A revoked override raised again is active again.
func raise(cur, next *Override) (*Override, error) {
	out := *next
	out.CreatedAt = cur.CreatedAt
	cl, cr, _, err := cur.Quantities()
	if err != nil {
		return nil, err
	}
	nl, nr, _, err := next.Quantities()
	if err != nil {
		return nil, err
	}
	if cur.Active(next.UpdatedAt) {
		if cl.Cmp(nl) > 0 {
			out.Limit = cur.Limit
			out.Memory, out.MemoryOverhead = cur.Memory, cur.MemoryOverhead // a Spark role's settings go with its limit
		}
		if cr.Cmp(nr) > 0 {
			out.Request = cur.Request
		}
	}
	return &out, nil
}
