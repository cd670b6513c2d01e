//! Handshake-era sessions in Redis, so that any instance of a fleet serves any session.
//!
//! rmcp's Streamable HTTP service keeps sessions in memory and asks a [`SessionStore`] about an
//! unknown `Mcp-Session-Id`: with this store, the instance that took the `initialize` writes the
//! client's initialize params to Redis, and another instance that gets the session's next
//! request replays the handshake from them and serves it, with no sticky routing. The 2026-07-28
//! revision has no sessions and needs none of this.
//!
//! Only the handshake is shared: requests in flight, and SSE streams, stay on the instance that
//! holds them. A record lives [`SESSION_TTL`] (refreshed by nothing but a new handshake), so a
//! client may come back to any instance within that time; DELETE removes it at once.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rmcp::transport::streamable_http_server::session::{SessionState, SessionStore, SessionStoreError};

/// How long a session's handshake record lives in Redis.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

const PREFIX: &str = "mcp-perfcheck:session:";

/// rmcp's session store on Redis.
pub struct RedisSessionStore {
    connection: ConnectionManager,
}

impl RedisSessionStore {
    /// Connects lazily, so that a Redis that is down at start is a 500 on a restore, not a
    /// server that will not start.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("--session-store `{url}`: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| anyhow::anyhow!("--session-store `{url}`: {e}"))?;
        Ok(RedisSessionStore { connection })
    }
}

/// A session id is the client's to send: only the characters rmcp's ids have become a key.
fn key(session_id: &str) -> Option<String> {
    let ok = !session_id.is_empty()
        && session_id.len() <= 128
        && session_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("{PREFIX}{session_id}"))
}

#[async_trait::async_trait]
impl SessionStore for RedisSessionStore {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let Some(key) = key(session_id) else { return Ok(None) };
        let text: Option<String> = self.connection.clone().get(key).await?;
        // A record that does not parse is no session (it is rewritten by the next handshake).
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let Some(key) = key(session_id) else { return Ok(()) };
        let text = serde_json::to_string(state)?;
        let () = self.connection.clone().set_ex(key, text, SESSION_TTL.as_secs()).await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let Some(key) = key(session_id) else { return Ok(()) };
        let _: u64 = self.connection.clone().del(key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_session_ids_shaped_like_rmcps_become_keys() {
        assert_eq!(
            super::key("557fbc37-5762-436f-b9a6-7b50fadbe896").unwrap(),
            "mcp-perfcheck:session:557fbc37-5762-436f-b9a6-7b50fadbe896"
        );
        for bad in ["", "a*", "x:y", "a b", &"a".repeat(129)] {
            assert_eq!(super::key(bad), None, "{bad:?}");
        }
    }
}
