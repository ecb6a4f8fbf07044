//! The load generator: a fixed number of connections, each sending the next prepared request as
//! soon as its previous one is answered (a closed loop), until the count or the time runs out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::payload::SignedDelivery;
use crate::report::Latencies;

pub struct RunResult {
    /// Answers with a 2xx status.
    pub ok: usize,
    /// Anything else, including transport errors.
    pub failed: usize,
    pub elapsed: Duration,
    /// Latency of every request that got a 2xx.
    pub latencies: Latencies,
    /// The first few failures, for the report.
    pub failures: Vec<String>,
}

impl RunResult {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

pub fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Sends `deliveries` to `POST {base_url}/webhooks/github` over `concurrency` connections.
pub async fn deliver(
    base_url: &str,
    deliveries: Arc<Vec<SignedDelivery>>,
    concurrency: usize,
    time_limit: Duration,
) -> anyhow::Result<RunResult> {
    let client = client(concurrency)?;
    let url = format!("{base_url}/webhooks/github");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + time_limit;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, url, next, deliveries) = (client.clone(), url.clone(), next.clone(), deliveries.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = Vec::new();
            let mut failed = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= deliveries.len() || Instant::now() > deadline {
                    break;
                }
                let d = &deliveries[i];
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("user-agent", "GitHub-Hookshot/bench")
                    .header("x-github-event", d.event)
                    .header("x-github-delivery", &d.delivery_id)
                    .header("x-github-hook-id", "490000001")
                    .header("x-github-hook-installation-target-type", "integration")
                    .header("x-github-hook-installation-target-id", "1100001")
                    .header("x-hub-signature-256", &d.signature)
                    .body(d.body.clone())
                    .send()
                    .await;
                match answer {
                    Ok(response) if response.status().is_success() => {
                        // Read the receipt: the answer is complete only when its body is.
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    Ok(response) => {
                        failed += 1;
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        if failures.len() < 3 {
                            failures.push(format!("{status}: {}", body.chars().take(200).collect::<String>()));
                        }
                    }
                    Err(error) => {
                        failed += 1;
                        if failures.len() < 3 {
                            failures.push(error.to_string());
                        }
                    }
                }
            }
            (latencies, failed, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failed = 0;
    let mut failures = Vec::new();
    for worker in workers {
        let (latencies, worker_failed, worker_failures) = worker.await?;
        all.extend(latencies);
        failed += worker_failed;
        failures.extend(worker_failures);
    }
    let elapsed = started.elapsed();
    failures.truncate(3);
    Ok(RunResult {
        ok: all.len(),
        failed,
        elapsed,
        latencies: Latencies::new(all),
        failures,
    })
}

/// Sends `count` GETs one after another (after `warmup` unmeasured ones) and returns their latencies.
pub async fn get_latencies(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    count: usize,
    warmup: usize,
) -> anyhow::Result<(Latencies, usize)> {
    let mut samples = Vec::with_capacity(count);
    let mut items = 0;
    for i in 0..count + warmup {
        let sent = Instant::now();
        let response = client
            .get(url)
            .header("accept", "application/json")
            .bearer_auth(bearer)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = sent.elapsed();
        if !status.is_success() {
            anyhow::bail!("GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
        }
        if i >= warmup {
            samples.push(took);
        }
        if i == 0 {
            let page: serde_json::Value = serde_json::from_slice(&body)?;
            items = page["deployments"].as_array().map_or(0, Vec::len);
        }
    }
    Ok((Latencies::new(samples), items))
}
