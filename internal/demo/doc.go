// Package demo plays a scripted night of Airflow/Spark incidents against a simulated cluster
// (an in-memory Kubernetes API, internal/memapi, reached by client-go's real clientset without a
// network) while podmedic's real pipeline — informers, embedded NATS, rules engine, notifier,
// the log API for failed tasks — watches it. It backs `podmedic demo`.
package demo
