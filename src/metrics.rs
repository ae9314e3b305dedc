//! Prometheus metrics. Labels are route templates (`/api/v1/rooms/{room}`),
//! never raw paths, so their number is bounded by the routes we serve.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, or `unmatched`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, or `unmatched`.
    pub route: String,
}

/// A label naming a store, worker or kind of repair.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    /// The name.
    pub name: String,
}

/// Labels of a job's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// The job's type.
    pub job_type: String,
    /// `done`, the repair it made, `retried`, `failed` or `unknown`.
    pub outcome: String,
}

/// A label naming a state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

/// The process's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Requests served, by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency in seconds, by method and route.
    pub latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests being served now.
    pub in_flight: Gauge,
    /// Connections open in the database pool.
    pub pool_connections: Gauge,
    /// Idle connections in the database pool.
    pub pool_idle: Gauge,
    /// Decisions taken in-process because Redis did not answer, by store
    /// (`rate_limit`, `throttle`).
    pub redis_fallbacks: Family<NameLabel, Counter>,
    /// Restarts of supervised background workers, by worker.
    pub worker_restarts: Family<NameLabel, Counter>,
    /// Repairs made by the LiveKit reconciler, by kind.
    pub reconcile_repairs: Family<NameLabel, Counter>,
    /// Background jobs by state (`queued`, `running`, `failed`), as the
    /// job runner last counted them.
    pub jobs: Family<StateLabel, Gauge>,
    /// Background job attempts, by type and outcome.
    pub jobs_run: Family<JobLabels, Counter>,
    /// Batches written by a batch writer (`db::batch`), by queue.
    pub batches: Family<NameLabel, Counter>,
    /// Items in those batches, by queue: items / batches is the mean batch.
    pub batched_items: Family<NameLabel, Counter>,
    batch_sync: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("voxplane");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let in_flight = Gauge::default();
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            latency.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            in_flight.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        let redis_fallbacks = Family::<NameLabel, Counter>::default();
        let worker_restarts = Family::<NameLabel, Counter>::default();
        let reconcile_repairs = Family::<NameLabel, Counter>::default();
        registry.register(
            "redis_fallbacks",
            "Decisions taken in-process because Redis did not answer, by store",
            redis_fallbacks.clone(),
        );
        registry.register(
            "worker_restarts",
            "Restarts of background workers after a failure or panic",
            worker_restarts.clone(),
        );
        registry.register(
            "reconcile_repairs",
            "State repaired by the LiveKit reconciler, by kind",
            reconcile_repairs.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        let jobs_run = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Background jobs by state (queued, running, failed)",
            jobs.clone(),
        );
        registry.register(
            "jobs_run",
            "Background job attempts by type and outcome",
            jobs_run.clone(),
        );
        let batches = Family::<NameLabel, Counter>::default();
        let batched_items = Family::<NameLabel, Counter>::default();
        registry.register(
            "batches",
            "Batches written together (one transaction each), by queue",
            batches.clone(),
        );
        registry.register(
            "batched_items",
            "Items written in those batches, by queue",
            batched_items.clone(),
        );
        Self {
            registry,
            jobs,
            jobs_run,
            batches,
            batched_items,
            batch_sync: Default::default(),
            redis_fallbacks,
            worker_restarts,
            reconcile_repairs,
            requests,
            latency,
            in_flight,
            pool_connections,
            pool_idle,
        }
    }
}

impl Metrics {
    /// Records the jobs by state.
    pub fn jobs_counted(&self, queued: i64, running: i64, failed: i64) {
        for (state, n) in [("queued", queued), ("running", running), ("failed", failed)] {
            self.jobs
                .get_or_create(&StateLabel {
                    state: state.into(),
                })
                .set(n);
        }
    }

    /// Counts one attempt of a job.
    pub fn job_ran(&self, job_type: &str, outcome: &str) {
        self.jobs_run
            .get_or_create(&JobLabels {
                job_type: job_type.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.into(),
                route: route.into(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(seconds);
    }

    /// Counts one decision of `store` taken without Redis.
    pub fn redis_fallback(&self, store: &str) {
        self.redis_fallbacks
            .get_or_create(&NameLabel { name: store.into() })
            .inc();
    }

    /// Counts one restart of a worker.
    pub fn worker_restart(&self, worker: &str) {
        self.worker_restarts
            .get_or_create(&NameLabel {
                name: worker.into(),
            })
            .inc();
    }

    /// Counts one repair of the reconciler.
    pub fn reconcile_repair(&self, kind: &str) {
        self.reconcile_repairs
            .get_or_create(&NameLabel { name: kind.into() })
            .inc();
    }

    /// Brings the batch counters of queue `name` up to what it has written.
    pub fn batch_written(&self, name: &str, written: crate::db::batch::Written) {
        // One scrape at a time: read and increment are two steps.
        let _one = self.batch_sync.lock().unwrap_or_else(|e| e.into_inner());
        let label = NameLabel { name: name.into() };
        for (family, now) in [
            (&self.batches, written.batches),
            (&self.batched_items, written.items),
        ] {
            let counter = family.get_or_create(&label);
            counter.inc_by(now.saturating_sub(counter.get()));
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}
