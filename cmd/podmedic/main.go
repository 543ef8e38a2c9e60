// Command podmedic watches Kubernetes clusters that run Airflow and Spark, recognises the
// failures platform teams otherwise clean up by hand in the morning, and takes small bounded
// actions, asking a human in Slack before anything risky happens.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
