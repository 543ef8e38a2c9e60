// Package bench measures podmedic: the memory and cold start of the real `podmedic run` binary
// against a real kube-apiserver with tens of thousands of Airflow-shaped pods, the throughput
// of observations through the bus and the rules, and the latency and storm behaviour of Slack
// notices. It prints figures and never asserts timings; cmd/podmedic-bench runs it for
// `make bench`.
package bench
