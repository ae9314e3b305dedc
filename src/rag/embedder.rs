//! The embedding model (all-MiniLM-L6-v2, 384-d, mean pooled, L2-normalised)
//! run in-process by fastembed on ONNX Runtime, which is loaded at run time
//! from the library `make setup` installs.
//!
//! Inference runs on dedicated OS threads, never on the async executor.
//! Requests queue their texts; a worker takes whatever is queued, up to one
//! batch, and embeds it in a single model call, so concurrent requests
//! share batches. Single texts (search queries, a chunk's edit) go to a
//! thread of their own with its own session, so that a search never waits
//! behind a document's batches; that session's threads sleep when idle
//! instead of spinning, leaving the cores to Postgres for the search itself.

use fastembed::{
    InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles,
    UserDefinedEmbeddingModel,
};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Dimensions of the model's vectors.
pub const DIMS: usize = 384;
/// Tokens per text the model sees (what sentence-transformers uses).
pub const MAX_TOKENS: usize = 256;
/// Files of the model directory.
pub const MODEL_FILES: [&str; 5] = [
    "model.onnx",
    "tokenizer.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
];

/// Where the model and runtime are, and how much CPU they get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderConfig {
    pub model_dir: PathBuf,
    pub onnxruntime_path: PathBuf,
    /// Inference threads, each with its own model session.
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session.
    pub threads: usize,
    /// Texts per model call.
    pub batch_size: usize,
    /// ONNX Runtime threads of the session for single texts (0: no session of
    /// their own; they queue with the others).
    pub query_threads: usize,
}

/// Queries embedded together at most (concurrent searches).
const QUERY_BATCH: usize = 8;

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, String>>;
type Answer = oneshot::Receiver<Result<Vec<Vec<f32>>, String>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// A handle on the inference threads; cheap to share.
pub struct Embedder {
    tx: Mutex<Sender<Job>>,
    /// The thread for single texts, if it has one.
    query_tx: Option<Mutex<Sender<Job>>>,
    batch_size: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

/// The process's ONNX Runtime environment (ONNX Runtime allows one).
fn environment(path: &Path) -> Result<ort::environment::Environment, String> {
    static ENV: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);
    let mut env = ENV
        .lock()
        .map_err(|_| "ONNX Runtime environment lock poisoned")?;
    if let Some(e) = env.as_ref() {
        return Ok(e.clone());
    }
    if !path.is_file() {
        return Err(format!(
            "ONNX Runtime library not found at {}",
            path.display()
        ));
    }
    // ort panics on some unusable libraries instead of failing.
    let built = std::panic::catch_unwind(|| {
        ort::init_from(path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?
            .with_name("voxplane")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    })
    .map_err(|_| format!("ONNX Runtime at {} is unusable", path.display()))??;
    *env = Some(built.clone());
    Ok(built)
}

/// Loads one model session (used by the workers, and bare by the benchmark).
pub fn load_model(cfg: &EmbedderConfig) -> Result<TextEmbedding, String> {
    load_session(cfg, true)
}

fn load_session(cfg: &EmbedderConfig, spinning: bool) -> Result<TextEmbedding, String> {
    let read = |name: &str| {
        let p = cfg.model_dir.join(name);
        std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let onnx = read("model.onnx")?;
    let files = TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let env = environment(&cfg.onnxruntime_path)?;
    let model = UserDefinedEmbeddingModel::new(onnx, files)
        .with_pooling(Pooling::Mean)
        // The int8 weights are cast inside the graph; `Dynamic` would forbid batching.
        .with_quantization(QuantizationMode::None);
    let mut options = InitOptionsUserDefined::new()
        .with_environment(env)
        .with_max_length(MAX_TOKENS);
    if cfg.threads > 0 {
        options = options.with_intra_threads(cfg.threads);
    }
    if !spinning {
        // Idle inference threads sleep instead of spinning for more work:
        // a query's threads would otherwise keep burning the cores Postgres
        // needs for the search that follows.
        options = options.with_session_config("session.intra_op.allow_spinning", "0");
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        TextEmbedding::try_new_from_user_defined(model, options)
    }))
    .map_err(|_| "the embedding model could not be loaded".to_string())?
    .map_err(|e| format!("cannot load the embedding model: {e}"))
}

impl Embedder {
    /// The embedder for a configuration, started once per process and shared.
    pub fn shared(cfg: &EmbedderConfig) -> Result<Arc<Embedder>, String> {
        static STARTED: Mutex<Vec<(EmbedderConfig, Arc<Embedder>)>> = Mutex::new(Vec::new());
        let mut started = STARTED.lock().map_err(|_| "embedder registry poisoned")?;
        if let Some((_, e)) = started.iter().find(|(c, _)| c == cfg) {
            return Ok(e.clone());
        }
        let e = Arc::new(Self::start(cfg)?);
        started.push((cfg.clone(), e.clone()));
        Ok(e)
    }

    /// Starts the inference threads; fails when the model cannot be loaded.
    pub fn start(cfg: &EmbedderConfig) -> Result<Embedder, String> {
        if let Some(missing) = MODEL_FILES
            .iter()
            .find(|f| !cfg.model_dir.join(f).is_file())
        {
            return Err(format!(
                "the embedding model is not installed ({} is missing)",
                cfg.model_dir.join(missing).display()
            ));
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.workers.max(1) {
            let model = load_model(cfg)?;
            let rx = rx.clone();
            let batch = cfg.batch_size.max(1);
            std::thread::Builder::new()
                .name(format!("embed-{i}"))
                .spawn(move || work(model, &rx, batch))
                .map_err(|e| format!("cannot start an inference thread: {e}"))?;
        }
        let query_tx = match cfg.query_threads {
            0 => None,
            threads => {
                let model = load_session(
                    &EmbedderConfig {
                        threads,
                        ..cfg.clone()
                    },
                    false,
                )?;
                let (tx, rx) = mpsc::channel::<Job>();
                let rx = Mutex::new(rx);
                std::thread::Builder::new()
                    .name("embed-query".into())
                    .spawn(move || work(model, &rx, QUERY_BATCH))
                    .map_err(|e| format!("cannot start an inference thread: {e}"))?;
                Some(Mutex::new(tx))
            }
        };
        Ok(Embedder {
            tx: Mutex::new(tx),
            query_tx,
            batch_size: cfg.batch_size.max(1),
        })
    }

    /// Queues texts (at most one batch) on `tx`; the receiver gets their vectors.
    fn submit(tx: &Mutex<Sender<Job>>, texts: Vec<String>) -> Result<Answer, String> {
        let (reply, wait) = oneshot::channel();
        tx.lock()
            .map_err(|_| "embedder queue poisoned")?
            .send(Job { texts, reply })
            .map_err(|_| "the inference threads have stopped")?;
        Ok(wait)
    }

    async fn vectors(wait: Answer) -> Result<Vec<Vec<f32>>, String> {
        wait.await.map_err(|_| "an inference thread died")?
    }

    /// Embeds texts (in order), queued in slices of one batch so that other
    /// requests interleave with a large one.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let waits = texts
            .chunks(self.batch_size)
            .map(|slice| Self::submit(&self.tx, slice.to_vec()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(texts.len());
        for wait in waits {
            out.extend(Self::vectors(wait).await?);
        }
        Ok(out)
    }

    /// Embeds one text (on the thread for single texts, if there is one).
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, String> {
        self.queue_one(text).await
    }

    /// Queues one text at once, as [`Embedder::embed_one`] does, and returns
    /// the wait for its vector: the caller can do other work (a database
    /// round trip) while the model runs. Dropping the wait drops the vector.
    pub fn queue_one(
        &self,
        text: &str,
    ) -> impl Future<Output = Result<Vec<f32>, String>> + Send + use<> {
        let tx = self.query_tx.as_ref().unwrap_or(&self.tx);
        let queued = Self::submit(tx, vec![text.to_owned()]);
        async move {
            Self::vectors(queued?)
                .await?
                .pop()
                .ok_or_else(|| "the model returned no vector".to_string())
        }
    }
}

/// An inference thread: takes queued jobs up to one batch, embeds them in one
/// model call, and answers each job with its share.
fn work(mut model: TextEmbedding, rx: &Mutex<Receiver<Job>>, batch: usize) {
    loop {
        let jobs = {
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            let mut n = first.texts.len();
            let mut jobs = vec![first];
            while n < batch {
                match rx.try_recv() {
                    Ok(j) => {
                        n += j.texts.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            jobs
        };
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model.embed(&texts, Some(texts.len().max(1)))
        }));
        match result {
            Ok(Ok(vectors)) if vectors.len() == texts.len() => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Ok(Ok(_)) => reply_all(jobs, "the model returned the wrong number of vectors"),
            Ok(Err(e)) => reply_all(jobs, &format!("embedding failed: {e}")),
            Err(_) => reply_all(jobs, "embedding panicked"),
        }
    }
}

fn reply_all(jobs: Vec<Job>, error: &str) {
    tracing::error!(error, "embedding failed");
    for job in jobs {
        let _ = job.reply.send(Err(error.to_owned()));
    }
}
