package webhook

import (
	"testing"
)

// FuzzDecodeReview: any body is decoded into a review or refused with an error; a decoded
// review is answered (allowed, with its uid) without a panic.
func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"version":"v1","resource":"pods"},"operation":"CREATE","namespace":"airflow","object":{"metadata":{"annotations":{"dag_id":"etl_daily","task_id":"load"}},"spec":{"containers":[{"name":"base","resources":{"limits":{"memory":"2Gi"}}}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":"x"}}`))
	f.Add([]byte(`{}`))
	m := mutator(cache(override("base", "3Gi", "2Gi")))
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := DecodeReview(body)
		if err != nil {
			return
		}
		resp := m.Admit(review.Request)
		if !resp.Allowed || resp.UID != review.Request.UID {
			t.Fatalf("a review must be allowed with its uid: %+v", resp)
		}
	})
}
