package demo

import (
	"strconv"
	"sync/atomic"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// newCluster returns a fake clientset that stores objects the way the API server does: a UID
// on create, and a new resourceVersion on every write. client-go's fake tracker does neither,
// and podmedic relies on both (the bus deduplicates on uid/resourceVersion).
func newCluster() *fake.Clientset {
	c := fake.NewClientset()
	var rv atomic.Int64
	c.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		var obj runtime.Object
		switch act := a.(type) {
		case k8stesting.CreateAction:
			obj = act.GetObject()
			if m, err := meta(obj); err == nil && m.GetUID() == "" {
				m.SetUID(types.UID(uuid.NewUUID()))
			}
		case k8stesting.UpdateAction:
			obj = act.GetObject()
		default:
			return false, nil, nil
		}
		if m, err := meta(obj); err == nil {
			m.SetResourceVersion(strconv.FormatInt(rv.Add(1), 10))
		}
		return false, nil, nil // let the default reactor store it
	})
	return c
}

func meta(obj runtime.Object) (metav1.Object, error) { return apimeta.Accessor(obj) }
