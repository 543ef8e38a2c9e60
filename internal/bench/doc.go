// Package bench measures podmedic the way issue 8 asks: the memory and cold start of the real
// `podmedic run` binary against a real kube-apiserver with tens of thousands of Airflow-shaped
// pods, the throughput of observations through the bus and the rules, and (once the Slack
// notifier exists) the latency and storm behaviour of notices. It prints figures and never
// asserts timings; cmd/podmedic-bench runs it for `make bench`.
package bench
