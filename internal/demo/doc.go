// Package demo plays a scripted night of Airflow/Spark incidents against a simulated cluster
// (client-go's fake clientset) while podmedic's real pipeline — informers, embedded NATS,
// rules engine, notifier — watches it. It backs `podmedic demo`.
package demo
