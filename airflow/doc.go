// Package airflow is podmedic's client of Airflow's REST API, as Airflow 2 (the stable API,
// /api/v1) and Airflow 3 (the public API, /api/v2) really speak it: what it calls, how it
// authenticates, and which failures are worth another try.
//
//   - Authentication: AIRFLOW_TOKEN as a bearer token when set (both versions); otherwise
//     AIRFLOW_USERNAME/AIRFLOW_PASSWORD as Basic auth on v1 (Airflow 2's basic_auth backend),
//     and on v2 exchanged for a JWT at POST /auth/token (Airflow 3 takes only JWTs). The JWT
//     is reused until shortly before its exp claim or until Airflow answers 401, then fetched
//     again once; concurrent callers share one fetch. Credentials are never logged or put in
//     an error.
//   - Retries: a transport error, a 5xx or a 429 (after its Retry-After) is tried again with
//     backoff until the caller's context ends; any other 4xx is final and its detail is
//     returned (Airflow 2 answers RFC 7807 problems, Airflow 3 FastAPI's {"detail": ...}).
//   - Calls: clearTaskInstances (v1 takes task ids as strings only; v2 also [task_id,
//     map_index] pairs), a task instance's state, and the DAG run at a logical (execution)
//     date, for workers of Airflow before 2.2 whose pods carry no run id.
package airflow
