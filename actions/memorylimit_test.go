package actions

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func container(limit, request string) *corev1.Container {
	c := &corev1.Container{Name: "base", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}}
	if limit != "" {
		c.Resources.Limits[corev1.ResourceMemory] = resource.MustParse(limit)
	}
	if request != "" {
		c.Resources.Requests[corev1.ResourceMemory] = resource.MustParse(request)
	}
	return c
}

func TestProposeMemoryLimit(t *testing.T) {
	tests := []struct {
		name           string
		limit, request string
		policy         func(*MemoryPolicy)
		wantLimit      string
		wantRequest    string
		wantCapped     bool
		wantErr        error
	}{
		{name: "ratio 1.5 from 2Gi, request raised to keep ratio", limit: "2Gi", request: "1Gi", wantLimit: "3Gi", wantRequest: "2Gi"},
		{name: "request already high enough is kept", limit: "2Gi", request: "2560Mi", wantLimit: "3Gi", wantRequest: "2560Mi"},
		{name: "min bump wins for small limits", limit: "256Mi", request: "256Mi", wantLimit: "512Mi", wantRequest: "384Mi"},
		{name: "decimal units 1500M", limit: "1500M", request: "1000M", wantLimit: "2176Mi", wantRequest: "1536Mi"},
		{name: "fractional 2.5Gi", limit: "2.5Gi", request: "2Gi", wantLimit: "3840Mi", wantRequest: "2560Mi"},
		{name: "capped at max_limit", limit: "12Gi", request: "12Gi", wantLimit: "16Gi", wantRequest: "12Gi", wantCapped: true},
		{name: "request above new limit is lowered to it", limit: "2Gi", request: "4Gi", wantLimit: "3Gi", wantRequest: "3Gi"},
		{name: "at the cap already", limit: "16Gi", request: "16Gi", wantErr: ErrAtMaxLimit},
		{name: "no limit: proposed from the request", limit: "", request: "1Gi", wantLimit: "1536Mi", wantRequest: "1Gi"},
		{name: "no limit and no request", limit: "", request: "", wantErr: ErrNoMemoryBaseline},
		{name: "no request: one is proposed", limit: "4Gi", request: "", wantLimit: "6Gi", wantRequest: "4Gi"},
		{name: "custom policy", limit: "1Gi", request: "1Gi", policy: func(p *MemoryPolicy) {
			p.BumpRatio = 2
			p.MaxLimitRequestRatio = 1
		}, wantLimit: "2Gi", wantRequest: "2Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultMemoryPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			got, err := ProposeMemoryLimit(container(tt.limit, tt.request), p)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantLimit, got.Limit.String(), "limit")
			require.Equal(t, tt.wantRequest, got.Request.String(), "request")
			require.Equal(t, tt.wantCapped, got.Capped)
			ratio := float64(got.Limit.Value()) / float64(got.Request.Value())
			require.LessOrEqual(t, ratio, p.MaxLimitRequestRatio+1e-9, "limit/request ratio")
			require.LessOrEqual(t, got.Limit.Value(), p.MaxLimit.Value())
		})
	}
}
