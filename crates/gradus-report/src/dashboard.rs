//! `gradus dashboard`: a read-only web server over a storage (axum). It
//! lists the studies; each study's page shows its plots and a sortable
//! table of its trials, and follows the study live: the page holds a
//! server-sent-event stream fed by the storage's incremental
//! [`Storage::trials_since`] reads (each poll returns only the trials
//! changed since the last), which updates the counts and the table as
//! trials finish and redraws the plots a few seconds later.
//!
//! Only GET routes; nothing writes. It binds to loopback unless told
//! otherwise; unknown routes are 404, malformed paths and queries 400,
//! other methods 405, and none of them stops it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use gradus_tune::{FrozenTrial, Storage, TrialState, TuneError};
use serde_json::json;

use crate::plots::PlotKind;
use crate::svg::escape;
use crate::{ReportError, StudyTrials};

/// How often a study's event stream asks the storage for changed trials.
pub const POLL: Duration = Duration::from_millis(250);

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("the dashboard's server: {0}")]
    Serve(String),
}

impl DashboardError {
    /// Whether the user can fix it by another `--bind` (port in use,
    /// address not on this machine).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, DashboardError::Bind { .. })
    }
}

#[derive(Clone)]
struct App {
    storage: Arc<dyn Storage>,
}

/// The routes (see the module docs).
pub fn router(storage: Arc<dyn Storage>) -> Router {
    Router::new()
        .route("/", get(studies))
        .route("/study/{name}", get(study_page))
        .route("/study/{name}/plot/{kind}", get(plot))
        .route("/study/{name}/trials", get(trials))
        .route("/study/{name}/events", get(events))
        // Browsers ask for one; there is none (and a 404 would be a console error).
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page\n") })
        .layer(axum::middleware::from_fn(bounded))
        .with_state(App { storage })
}

/// The most bytes of headers, and of a request's target, the dashboard reads.
pub const MAX_HEADER_BYTES: usize = 16 << 10;
pub const MAX_TARGET_BYTES: usize = 4 << 10;

/// Refuses requests larger than a browser's: 431 for headers over
/// [`MAX_HEADER_BYTES`], 414 for a target over [`MAX_TARGET_BYTES`], 413
/// for any body (nothing here takes one).
async fn bounded(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let headers: usize = request.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers > MAX_HEADER_BYTES {
        return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large\n").into_response();
    }
    if request.uri().to_string().len() > MAX_TARGET_BYTES {
        return (StatusCode::URI_TOO_LONG, "address too long\n").into_response();
    }
    let has_body = request.headers().get(header::CONTENT_LENGTH).is_some_and(|l| l != "0")
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body {
        return (StatusCode::PAYLOAD_TOO_LARGE, "this server takes no request bodies\n").into_response();
    }
    next.run(request).await
}

/// Serves until the process ends, on `bind`; `ready` is told the address
/// it listens on (port 0 picks a free one).
pub fn run(storage: Arc<dyn Storage>, bind: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<(), DashboardError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| DashboardError::Serve(e.to_string()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| DashboardError::Bind {
            addr: bind,
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => "the port is in use (pick another with --bind)".into(),
                std::io::ErrorKind::AddrNotAvailable => "the address is not one of this machine's".into(),
                _ => e.to_string(),
            },
        })?;
        ready(listener.local_addr().map_err(|e| DashboardError::Serve(e.to_string()))?);
        axum::serve(listener, router(storage)).await.map_err(|e| DashboardError::Serve(e.to_string()))
    })
}

/// A page's error: 404 for a study that is not there, 500 for a storage
/// that failed.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

impl From<ReportError> for Failure {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Storage(TuneError::UnknownStudy(_)) | ReportError::Empty { .. } => {
                Failure(StatusCode::NOT_FOUND, format!("{e}\n"))
            }
            e => Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        }
    }
}

impl From<TuneError> for Failure {
    fn from(e: TuneError) -> Self {
        ReportError::from(e).into()
    }
}

/// Runs a storage read off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, Failure> + Send + 'static) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))))
}

/// `text` as a URL path segment.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em auto;max-width:1480px;color:#222}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}\
th{background:#f4f4f4;cursor:pointer}td.text{text-align:left}.note{color:#666}svg{max-width:100%;height:auto}\
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(640px,1fr));gap:8px}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\
         <body>{body}</body></html>\n",
        escape(title)
    ))
}

async fn studies(State(app): State<App>) -> Result<Html<String>, Failure> {
    let list = blocking(move || Ok(app.storage.list_studies()?)).await?;
    let mut body =
        String::from("<h1>Studies</h1><table><tr><th>study</th><th>direction</th><th>trials</th><th>best</th></tr>");
    for s in &list {
        let _ = write!(
            body,
            "<tr><td class=\"text\"><a href=\"/study/{}\">{}</a></td><td class=\"text\">{:?}</td><td>{}</td><td>{}</td></tr>",
            encode(&s.name),
            escape(&s.name),
            s.direction,
            s.n_trials,
            s.best_value.map_or(String::new(), crate::svg::number)
        );
    }
    body.push_str("</table>");
    if list.is_empty() {
        body.push_str("<p class=\"note\">No studies in this storage yet.</p>");
    }
    Ok(page("gradus dashboard", &body))
}

/// The plots a study's page shows, in order, with their headings.
const PLOTS: [(PlotKind, &str); 8] = [
    (PlotKind::History, "Optimisation history"),
    (PlotKind::Intermediate, "Intermediate values"),
    (PlotKind::Importance, "Hyperparameter importance"),
    (PlotKind::Parallel, "Parallel coordinates"),
    (PlotKind::Contour, "The two most important parameters"),
    (PlotKind::Edf, "Distribution of values"),
    (PlotKind::Timeline, "Timeline"),
    (PlotKind::Slice, "Slices"),
];

async fn study_page(State(app): State<App>, Path(name): Path<String>) -> Result<Html<String>, Failure> {
    let record = {
        let name = name.clone();
        blocking(move || Ok(app.storage.load_study(&name)?)).await?
    };
    let base = format!("/study/{}", encode(&record.name));
    let mut body = format!(
        "<p><a href=\"/\">studies</a></p><h1>Study {}</h1>\
         <p><span id=\"trial-count\">0</span> trials: <span id=\"complete\">0</span> complete, \
         <span id=\"pruned\">0</span> pruned, <span id=\"failed\">0</span> failed, <span id=\"running\">0</span> running \
         (objective {:?}d) <span id=\"live\" class=\"note\">connecting…</span></p><div class=\"plots\">",
        escape(&record.name),
        record.direction
    );
    for (kind, heading) in PLOTS {
        let _ = write!(
            body,
            "<section><h2>{heading}</h2><div class=\"plot\" data-kind=\"{}\"><p class=\"note\">drawing…</p></div></section>",
            kind.name()
        );
    }
    body.push_str(
        "</div><section><h2>Trials</h2><table id=\"trials\"><thead><tr><th data-key=\"number\">trial</th>\
         <th data-key=\"state\">state</th><th data-key=\"value\">value</th><th data-key=\"seconds\">seconds</th>\
         <th data-key=\"params\">parameters</th></tr></thead><tbody></tbody></table></section>",
    );
    let _ = write!(body, "<script>const BASE = {};\n{}</script>", json!(base), SCRIPT);
    Ok(page(&format!("Study {}", record.name), &body))
}

/// The study page's script: loads the plots, follows the event stream
/// (counts and table rows as trials change; plots redrawn at most every
/// few seconds), and sorts the table by a clicked column.
const SCRIPT: &str = r#"
const rows = new Map();
let dirty = false, sortKey = 'number', sortUp = true;
function loadPlots() {
  document.querySelectorAll('.plot').forEach(div => {
    fetch(BASE + '/plot/' + div.dataset.kind).then(r => r.text()).then(t => { div.innerHTML = t; });
  });
}
function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
function render() {
  const list = [...rows.values()];
  list.sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    const c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
    return sortUp ? c : -c;
  });
  const body = document.querySelector('#trials tbody');
  const fresh = document.createElement('tbody');
  for (const t of list) {
    const tr = document.createElement('tr');
    tr.append(cell(t.number), cell(t.state, 'text'), cell(t.value ?? ''), cell(t.seconds ?? ''), cell(t.params, 'text'));
    fresh.append(tr);
  }
  body.replaceWith(fresh);
  const count = s => list.filter(t => t.state === s).length;
  document.getElementById('trial-count').textContent = list.length;
  document.getElementById('complete').textContent = count('complete');
  document.getElementById('pruned').textContent = count('pruned');
  document.getElementById('failed').textContent = count('fail');
  document.getElementById('running').textContent = count('running') + count('waiting');
}
document.querySelectorAll('#trials th').forEach(th => th.addEventListener('click', () => {
  sortUp = sortKey === th.dataset.key ? !sortUp : true; sortKey = th.dataset.key; render();
}));
const events = new EventSource(BASE + '/events');
events.addEventListener('trials', e => {
  for (const t of JSON.parse(e.data).trials) rows.set(t.number, t);
  render(); dirty = true;
  document.getElementById('live').textContent = 'live';
});
events.onerror = () => { document.getElementById('live').textContent = 'reconnecting…'; };
loadPlots();
setInterval(() => { if (dirty) { dirty = false; loadPlots(); } }, 3000);
"#;

/// A trial as the page's table shows it.
fn trial_json(t: &FrozenTrial) -> serde_json::Value {
    let state = match t.state {
        TrialState::Complete(_) => "complete",
        TrialState::Pruned => "pruned",
        TrialState::Fail => "fail",
        TrialState::Running => "running",
        TrialState::Waiting => "waiting",
    };
    let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "number": t.number,
        "state": state,
        "value": t.value().filter(|v| v.is_finite()),
        "seconds": t.started_at.zip(t.finished_at).map(|(a, b)| ((b - a) * 10.0).round() / 10.0),
        "params": params.join(" "),
    })
}

async fn plot(State(app): State<App>, Path((name, kind)): Path<(String, String)>) -> Result<Response, Failure> {
    let Some(kind) = PlotKind::ALL.into_iter().find(|k| k.name() == kind) else {
        return Err(Failure(StatusCode::NOT_FOUND, format!("no plot named '{kind}'\n")));
    };
    blocking(move || {
        let study = StudyTrials::load(app.storage.as_ref(), &name)?;
        Ok(match kind.svg(&study) {
            Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
            // Nothing to show yet: a note the page shows in the plot's place.
            Err(e @ ReportError::Empty { .. }) => {
                let note = format!("<p class=\"note\">Not drawn yet: {}.</p>", escape(&e.to_string()));
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], note).into_response()
            }
            Err(e) => return Err(e.into()),
        })
    })
    .await
}

#[derive(serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

/// The trials changed after cursor `since` (0: all) and the next cursor, as JSON.
async fn trials(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(Since { since }): Query<Since>,
) -> Result<Response, Failure> {
    let changed = blocking(move || {
        let id = app.storage.load_study(&name)?.id;
        Ok(app.storage.trials_since(id, since)?)
    })
    .await?;
    let body = json!({"cursor": changed.cursor, "trials": changed.trials.iter().map(trial_json).collect::<Vec<_>>()});
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

/// Server-sent events: a `trials` event with every trial at first, then
/// one with the trials that changed each time some did.
async fn events(State(app): State<App>, Path(name): Path<String>) -> Result<Response, Failure> {
    let id = {
        let (storage, name) = (app.storage.clone(), name.clone());
        blocking(move || Ok(storage.load_study(&name)?.id)).await?
    };
    let stream = futures_util::stream::unfold((app.storage, 0u64, true), move |(storage, cursor, first)| async move {
        loop {
            if !first {
                tokio::time::sleep(POLL).await;
            }
            let s = storage.clone();
            let read = tokio::task::spawn_blocking(move || s.trials_since(id, cursor)).await;
            let changed = match read {
                Ok(Ok(changed)) => changed,
                // A failed read is tried again at the next poll.
                _ => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if changed.trials.is_empty() && !first {
                continue;
            }
            let data = json!({"trials": changed.trials.iter().map(trial_json).collect::<Vec<_>>()}).to_string();
            let event: Result<Event, std::convert::Infallible> = Ok(Event::default().event("trials").data(data));
            return Some((event, (storage, changed.cursor.max(cursor), false)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
