//! One API call and its retries. GitHub asks clients to wait out a rate limit (`retry-after`,
//! or the `x-ratelimit-reset` time when `x-ratelimit-remaining` is 0) and to back off on server
//! errors. Here a call waits at most [`Retries::max_wait`] in all, after which it fails and
//! says what it would have needed. A call that is not safe to repeat (creating a comment) is
//! never sent twice on a server error or a lost connection, since the first may have landed:
//! the caller looks again first.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use super::{ApiError, GitHub};

/// How calls are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retries {
    /// Attempts at most of a call safe to repeat, on a 5xx or a network error.
    pub attempts: u32,
    /// The first backoff, doubled at each attempt, with ±50% jitter so that a matrix of jobs
    /// does not retry in step.
    pub base: Duration,
    /// The longest a call waits in all (backoffs and rate limits).
    pub max_wait: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries { attempts: 4, base: Duration::from_secs(1), max_wait: Duration::from_secs(60) }
    }
}

impl Retries {
    /// The wait before attempt `attempt + 1` (`attempt` ≥ 1), jittered by `unit` in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        self.base.saturating_mul(1 << (attempt - 1).min(16)).mul_f64(0.5 + unit)
    }
}

/// What a call does, for its error.
#[derive(Debug, Clone, Copy)]
pub(super) struct Doing {
    pub doing: &'static str,
    pub permission: &'static str,
}

/// How long a refused call asks to be waited out, when it is a rate limit: a 429, or a 403
/// with `retry-after` or no requests left (`now` is the Unix time in seconds).
pub fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, now: u64) -> Option<Duration> {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (headers.contains_key("retry-after") || header("x-ratelimit-remaining") == Some(0)));
    if !limited {
        return None;
    }
    let seconds = header("retry-after")
        .or_else(|| header("x-ratelimit-reset").map(|reset| reset.saturating_sub(now) + 1))
        .unwrap_or(60);
    Some(Duration::from_secs(seconds.max(1)))
}

/// A number in [0, 1) that differs between processes and calls.
fn jitter() -> f64 {
    (super::workflow::rand_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl GitHub {
    /// `method` on `route` with `body`, retried per [`GitHub::retries`]; `repeatable` says the
    /// call may be sent again after a server error or a lost connection. Returns the answer's
    /// JSON (null when empty). A failure that left the outcome unknown is `transient`.
    pub(super) async fn call(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
        what: Doing,
        repeatable: bool,
    ) -> Result<Value, ApiError> {
        let mut waited = Duration::ZERO;
        for attempt in 1.. {
            let (wait, error) = match self.send(&method, route, body).await {
                Ok((status, _, text)) if status.is_success() => {
                    return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                }
                Ok((status, headers, text)) => {
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(String::from))
                        .unwrap_or_else(|| text.chars().take(200).collect());
                    let error = |transient| ApiError {
                        doing: what.doing,
                        status: Some(status.as_u16()),
                        message: message.clone(),
                        permission: what.permission,
                        transient,
                    };
                    if let Some(wait) = rate_limit_wait(status, &headers, unix_now()) {
                        // Refused, so never done: safe to send again whatever the call.
                        (wait, error(false))
                    } else if status.is_server_error() && repeatable && attempt < self.retries.attempts {
                        (self.retries.backoff(attempt, jitter()), error(true))
                    } else {
                        return Err(error(status.is_server_error()));
                    }
                }
                Err(e) => {
                    let error = ApiError {
                        doing: what.doing,
                        status: None,
                        message: e.to_string(),
                        permission: what.permission,
                        transient: true,
                    };
                    if !repeatable || attempt >= self.retries.attempts {
                        return Err(error);
                    }
                    (self.retries.backoff(attempt, jitter()), error)
                }
            };
            if waited + wait > self.retries.max_wait {
                return Err(ApiError {
                    message: format!(
                        "{} (gave up: waiting {}s more would pass the {}s --max-wait)",
                        error.message,
                        wait.as_secs_f64().ceil(),
                        self.retries.max_wait.as_secs()
                    ),
                    ..error
                });
            }
            tokio::time::sleep(wait).await;
            waited += wait;
        }
        unreachable!("the attempts loop returns")
    }

    async fn send(
        &self,
        method: &Method,
        route: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, String), octocrab::Error> {
        let response = match *method {
            Method::GET => self.crab._get(route).await?,
            Method::PATCH => self.crab._patch(route, body).await?,
            _ => self.crab._post(route, body).await?,
        };
        let (status, headers) = (response.status(), response.headers().clone());
        Ok((status, headers, self.crab.body_to_string(response).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_around_it() {
        let r = Retries::default();
        assert_eq!(r.backoff(1, 0.5), Duration::from_secs(1));
        assert_eq!(r.backoff(3, 0.5), Duration::from_secs(4));
        assert_eq!(r.backoff(3, 0.0), Duration::from_secs(2));
        assert!(r.backoff(3, 0.999) < Duration::from_secs(6));
        assert!(r.backoff(40, 0.5) > Duration::ZERO, "no overflow");
    }

    #[test]
    fn rate_limits_are_told_apart_from_refusals() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let wait = |s: u16, h: &HeaderMap| rate_limit_wait(StatusCode::from_u16(s).unwrap(), h, 1_000);
        assert_eq!(wait(429, &headers(&[("retry-after", "7")])), Some(Duration::from_secs(7)));
        assert_eq!(wait(403, &headers(&[("retry-after", "3")])), Some(Duration::from_secs(3)), "a secondary limit");
        let exhausted = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1100")]);
        assert_eq!(wait(403, &exhausted), Some(Duration::from_secs(101)));
        assert_eq!(wait(403, &headers(&[("x-ratelimit-remaining", "12")])), None, "a plain 403 is a refusal");
        assert_eq!(wait(502, &headers(&[])), None);
    }
}
