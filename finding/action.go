package finding

// ActionType names a bounded action. The names are stable (replay output, rules.yaml).
type ActionType string

const (
	ActionDeletePod          ActionType = "delete-pod"
	ActionEvictPod           ActionType = "evict-pod"
	ActionProposeMemoryLimit ActionType = "propose-memory-limit"
	ActionAirflowClearTask   ActionType = "airflow-clear-task"
	ActionNotify             ActionType = "notify"
)

// ActionTypes lists every action type.
func ActionTypes() []ActionType {
	return []ActionType{ActionDeletePod, ActionEvictPod, ActionProposeMemoryLimit,
		ActionAirflowClearTask, ActionNotify}
}

// Valid reports whether t is one of ActionTypes.
func (t ActionType) Valid() bool {
	for _, c := range ActionTypes() {
		if c == t {
			return true
		}
	}
	return false
}

// Mode says how an action is taken.
type Mode string

const (
	// ModeNotify only reports; nothing is executed.
	ModeNotify Mode = "notify"
	// ModeApprove proposes the action and executes it after a human approves.
	ModeApprove Mode = "approve"
	// ModeAuto executes the action within the guard's budgets, then reports.
	ModeAuto Mode = "auto"
)

// Modes lists the valid modes.
func Modes() []Mode { return []Mode{ModeNotify, ModeApprove, ModeAuto} }

// Action is the action a finding leads to, with concrete parameters.
type Action struct {
	Type   ActionType        `json:"type"`
	Mode   Mode              `json:"mode"`
	Params map[string]string `json:"params"`
}
