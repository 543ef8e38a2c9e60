package rules

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// DecodePod decodes the JSON of a pod as carried in an observation envelope.
func DecodePod(data []byte) (*corev1.Pod, error) {
	var pod corev1.Pod
	if err := json.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	return &pod, nil
}
