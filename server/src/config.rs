//! Server configuration: defaults < TOML file < environment < command-line flags.
//! Unknown keys in the file are errors; every limit has a name here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// How the sequencer makes a batch durable before replying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync (fdatasync) every batch before any reply of the batch leaves (the default).
    Sync,
    /// Write every batch to the OS but fsync only every `async_flush_ms`: a machine crash can
    /// lose the last acknowledged commands. Only by explicit choice. Settlement to the
    /// registry and snapshots still wait for the fsync, so what the registry holds never
    /// gets ahead of the journal (a withdrawal, answered once settled, waits for it too:
    /// up to `async_flush_ms`).
    Async,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate it signed (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Named limits. Going past any of them gets a clear error, never unbounded queuing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest gRPC message accepted, in bytes.
    pub message_bytes_max: usize,
    /// Largest message of the compliance service (bulk loads of entities, activity and
    /// verified emissions; plan files), in bytes.
    pub bulk_message_bytes_max: usize,
    /// Commands waiting for the sequencer; beyond it requests get RESOURCE_EXHAUSTED.
    pub queue_depth: usize,
    /// Most commands journaled with one fsync.
    pub batch_max: usize,
    /// Concurrent requests on one HTTP/2 connection.
    pub in_flight_per_connection: usize,
    /// Concurrent trading requests of one principal (across connections and streams).
    pub in_flight_per_principal: usize,
    /// Open streams (executions, market data, order entry) of one principal.
    pub streams_per_principal: usize,
    /// Items buffered for one stream consumer.
    pub stream_buffer: usize,
    /// A consumer that does not take an item for this long is dropped (UNAVAILABLE).
    pub slow_consumer_ms: u64,
    /// Stream items kept in memory for resuming (once full, the oldest go a 64th of this
    /// at a time, at most 1,024).
    pub history_events: usize,
    /// Trades kept per instrument for GetTrades.
    pub trades_retained: usize,
    /// Registry requests and settlement batches waiting for the registry writer; beyond it
    /// registry requests get RESOURCE_EXHAUSTED.
    pub registry_queue_depth: usize,
    /// Registry transactions committed with one fsync.
    pub registry_batch_max: usize,
    /// Journal segment size before a new segment starts.
    pub journal_segment_bytes: u64,
    /// Resting orders in the engine.
    pub orders_max: u32,
    pub orders_per_account_max: u32,
    pub accounts_max: u32,
    /// Changes are refused (RESOURCE_EXHAUSTED, `DISK_FULL`) while the data directory's
    /// file system has less than this free, and accepted again once it has it: the
    /// journal never fails for want of space mid-batch, and RocksDB, the snapshots and a
    /// new journal segment always find room.
    pub disk_reserve_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            message_bytes_max: 64 * 1024,
            bulk_message_bytes_max: 8 * 1024 * 1024,
            queue_depth: 65_536,
            batch_max: 4_096,
            in_flight_per_connection: 1_024,
            in_flight_per_principal: 8_192,
            streams_per_principal: 32,
            stream_buffer: 8_192,
            slow_consumer_ms: 5_000,
            history_events: 1 << 20,
            trades_retained: 100_000,
            registry_queue_depth: 65_536,
            registry_batch_max: 1_024,
            journal_segment_bytes: 64 << 20,
            orders_max: 1 << 20,
            orders_per_account_max: 10_000,
            accounts_max: 100_000,
            disk_reserve_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// Every limit as the `[limits]` key, its value and what it bounds: the table the API
    /// reference prints (a test holds it to the struct's fields and TOML names).
    pub fn table(&self) -> [(&'static str, u64, &'static str); 18] {
        let n = |v: usize| v as u64;
        [
            (
                "message_bytes_max",
                n(self.message_bytes_max),
                "largest gRPC request message, bytes",
            ),
            (
                "bulk_message_bytes_max",
                n(self.bulk_message_bytes_max),
                "largest ComplianceService request (bulk loads, plan files), bytes",
            ),
            (
                "queue_depth",
                n(self.queue_depth),
                "commands waiting for the sequencer (then RESOURCE_EXHAUSTED QUEUE_FULL)",
            ),
            (
                "batch_max",
                n(self.batch_max),
                "commands journaled with one fsync",
            ),
            (
                "in_flight_per_connection",
                n(self.in_flight_per_connection),
                "concurrent requests on one HTTP/2 connection",
            ),
            (
                "in_flight_per_principal",
                n(self.in_flight_per_principal),
                "concurrent trading requests of one principal",
            ),
            (
                "streams_per_principal",
                n(self.streams_per_principal),
                "open streams of one principal",
            ),
            (
                "stream_buffer",
                n(self.stream_buffer),
                "items buffered for one stream consumer",
            ),
            (
                "slow_consumer_ms",
                self.slow_consumer_ms,
                "a consumer not taking an item this long is dropped (UNAVAILABLE)",
            ),
            (
                "history_events",
                n(self.history_events),
                "stream items kept for resuming",
            ),
            (
                "trades_retained",
                n(self.trades_retained),
                "trades kept per instrument for GetTrades",
            ),
            (
                "registry_queue_depth",
                n(self.registry_queue_depth),
                "registry requests waiting for the registry writer",
            ),
            (
                "registry_batch_max",
                n(self.registry_batch_max),
                "registry transactions committed with one fsync",
            ),
            (
                "journal_segment_bytes",
                self.journal_segment_bytes,
                "journal segment size, bytes",
            ),
            (
                "orders_max",
                u64::from(self.orders_max),
                "resting orders in the engine",
            ),
            (
                "orders_per_account_max",
                u64::from(self.orders_per_account_max),
                "resting orders of one account",
            ),
            (
                "accounts_max",
                u64::from(self.accounts_max),
                "trading accounts",
            ),
            (
                "disk_reserve_bytes",
                self.disk_reserve_bytes,
                "changes refused (DISK_FULL) while less is free, bytes",
            ),
        ]
    }
}

/// The trading calendar. When enabled the server opens the day, moves through the
/// sessions and closes the day on the wall clock; operators can always drive it by hand.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    pub enabled: bool,
    /// Local time of the exchange relative to UTC (Beijing: +480).
    pub utc_offset_minutes: i32,
    /// Non-trading weekdays as YYYYMMDD (weekends are never trading days).
    pub holidays: Vec<u32>,
    /// "HH:MM" local times.
    pub pre_open: String,
    pub opening_call: String,
    pub sessions: Vec<(String, String)>,
    pub block_window: (String, String),
    pub close_day: String,
}

impl Default for Calendar {
    fn default() -> Calendar {
        Calendar {
            enabled: false,
            utc_offset_minutes: 480,
            holidays: Vec::new(),
            pre_open: "09:15".into(),
            opening_call: "09:15".into(),
            sessions: vec![
                ("09:30".into(), "11:30".into()),
                ("13:00".into(), "15:00".into()),
            ],
            block_window: ("13:00".into(), "15:00".into()),
            close_day: "15:30".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// The exchange's fee account at the engine (funds only).
    pub fee_account: u64,
    /// Sale proceeds usable on the day of the sale.
    pub proceeds_same_day: bool,
}

impl Default for EngineSection {
    fn default() -> EngineSection {
        EngineSection {
            fee_account: 0,
            proceeds_same_day: true,
        }
    }
}

/// Market-wide risk limits, applied to each instrument created without its own. No
/// national figure is published (the Beijing pilot limited compliance entities to their
/// allocation + 1,000,000 t and others to 1,000,000 t, reporting from 500,000 t), so both
/// are parameters: unset means none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketSection {
    /// Holding limit of accounts without their own, tonnes (at least 1).
    pub position_limit_t: Option<u64>,
    /// Large-holder reporting threshold, tonnes (at least 1).
    pub large_holder_t: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Prometheus `/metrics` (and `/healthz`); `None` turns it off.
    pub metrics_listen: Option<SocketAddr>,
    /// The web dashboard (read-only pages behind the same tokens); `None` turns it off.
    pub dashboard_listen: Option<SocketAddr>,
    /// Principals and their tokens (TOML). Unset: `<data_dir>/tokens.toml`, created with a
    /// random token per role on first start.
    pub tokens_file: Option<PathBuf>,
    pub durability: Durability,
    /// Async durability: fsync at least this often.
    pub async_flush_ms: u64,
    /// Snapshot the engine every this many commands (0: only at shutdown). Recovery loads
    /// the newest snapshot and replays the journal after it. Default 5,000,000: at most
    /// about a second of replay at start-up (4.9 M commands/s measured), while the copy on
    /// the core thread (a few ms with tens of thousands of resting orders, during which
    /// orders wait) comes at most once per 5 M commands.
    pub snapshot_every: u64,
    /// Journal segments are zero-filled and synced ahead of time by a helper thread, so
    /// each batch's fsync has no file-size change to commit (faster on most file
    /// systems). Costs one segment of extra writes per segment.
    pub journal_preallocate: bool,
    /// After each snapshot, journal segments recovery no longer needs (every record at or
    /// before the older snapshot kept) move to `journal/archive`, for the operator to ship
    /// to long-term storage; otherwise the journal directory grows without bound.
    pub journal_archive: bool,
    pub log_format: LogFormat,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub calendar: Calendar,
    pub engine: EngineSection,
    pub market: MarketSection,
    /// Start without refusing a state known to be wrong, to inspect it: every change is
    /// refused (`READ_ONLY`), nothing on disk is repaired (a damaged registry is rebuilt
    /// into `registry.inspect`), no snapshot is written.
    pub read_only: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            dashboard_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9470))),
            tokens_file: None,
            durability: Durability::Sync,
            async_flush_ms: 50,
            snapshot_every: 5_000_000,
            journal_preallocate: true,
            journal_archive: true,
            log_format: LogFormat::Plain,
            tls: None,
            limits: Limits::default(),
            calendar: Calendar::default(),
            engine: EngineSection::default(),
            market: MarketSection::default(),
            read_only: false,
        }
    }
}

/// Values from the environment and flags (clap merges those two: a flag beats its
/// variable); each one set overrides the file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "CARBONX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (journal, snapshots, registry).
    #[arg(long, env = "CARBONX_DATA")]
    pub data: Option<PathBuf>,
    /// gRPC listen address (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "CARBONX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Prometheus metrics listen address; "off" disables it.
    #[arg(long, env = "CARBONX_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Web dashboard listen address; "off" disables it.
    #[arg(long, env = "CARBONX_DASHBOARD_LISTEN")]
    pub dashboard_listen: Option<String>,
    #[arg(long, env = "CARBONX_TOKENS")]
    pub tokens: Option<PathBuf>,
    #[arg(long, env = "CARBONX_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    #[arg(long, env = "CARBONX_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Serve a state start-up would refuse, read-only, to inspect it (see `read_only`).
    #[arg(long, env = "CARBONX_READ_ONLY")]
    pub read_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {why}")]
    Invalid { field: &'static str, why: String },
}

impl Config {
    /// Defaults, then the file (if any), then environment and flags.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match &overrides.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(data) = &overrides.data {
            config.data_dir = data.clone();
        }
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(metrics) = &overrides.metrics_listen {
            config.metrics_listen = if metrics == "off" {
                None
            } else {
                Some(metrics.parse().map_err(|_| ConfigError::Invalid {
                    field: "metrics_listen",
                    why: format!("{metrics:?} is not an address or \"off\""),
                })?)
            };
        }
        if let Some(dashboard) = &overrides.dashboard_listen {
            config.dashboard_listen = if dashboard == "off" {
                None
            } else {
                Some(dashboard.parse().map_err(|_| ConfigError::Invalid {
                    field: "dashboard_listen",
                    why: format!("{dashboard:?} is not an address or \"off\""),
                })?)
            };
        }
        if let Some(tokens) = &overrides.tokens {
            config.tokens_file = Some(tokens.clone());
        }
        if let Some(d) = overrides.durability {
            config.durability = d;
        }
        if let Some(f) = overrides.log_format {
            config.log_format = f;
        }
        config.read_only |= overrides.read_only;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let positive = [
            ("limits.message_bytes_max", l.message_bytes_max),
            ("limits.bulk_message_bytes_max", l.bulk_message_bytes_max),
            ("limits.queue_depth", l.queue_depth),
            ("limits.batch_max", l.batch_max),
            (
                "limits.in_flight_per_connection",
                l.in_flight_per_connection,
            ),
            ("limits.in_flight_per_principal", l.in_flight_per_principal),
            ("limits.streams_per_principal", l.streams_per_principal),
            ("limits.stream_buffer", l.stream_buffer),
            ("limits.history_events", l.history_events),
            ("limits.trades_retained", l.trades_retained),
            ("limits.registry_queue_depth", l.registry_queue_depth),
            ("limits.registry_batch_max", l.registry_batch_max),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    why: "must be at least 1".into(),
                });
            }
        }
        if l.registry_batch_max > registry::GROUP_TXS_MAX {
            return Err(ConfigError::Invalid {
                field: "limits.registry_batch_max",
                why: format!("at most {}", registry::GROUP_TXS_MAX),
            });
        }
        if l.journal_segment_bytes < 4_096 {
            return Err(ConfigError::Invalid {
                field: "limits.journal_segment_bytes",
                why: "at least 4096".into(),
            });
        }
        if l.orders_max == 0 || l.orders_per_account_max == 0 || l.accounts_max == 0 {
            return Err(ConfigError::Invalid {
                field: "limits.orders_max",
                why: "engine limits must be at least 1".into(),
            });
        }
        for (field, value) in [
            ("market.position_limit_t", self.market.position_limit_t),
            ("market.large_holder_t", self.market.large_holder_t),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid {
                    field,
                    why: "must be at least 1 t (leave it out for none)".into(),
                });
            }
        }
        crate::calendar::Schedule::parse(&self.calendar).map_err(|why| ConfigError::Invalid {
            field: "calendar",
            why,
        })?;
        Ok(())
    }
}

/// Where things live under the data directory.
pub fn journal_dir(config: &Config) -> PathBuf {
    config.data_dir.join("journal")
}

pub fn registry_dir(config: &Config) -> PathBuf {
    config.data_dir.join("registry")
}

pub fn snapshot_dir(config: &Config) -> PathBuf {
    config.data_dir.join("snapshots")
}

/// The engine's configuration from the server's.
pub fn engine_config(config: &Config) -> engine::EngineConfig {
    engine::EngineConfig {
        fee_account: engine::AccountId(config.engine.fee_account),
        risk_checks: true,
        proceeds_same_day: config.engine.proceeds_same_day,
        limits: engine::Limits {
            accounts_max: config.limits.accounts_max,
            orders_max: config.limits.orders_max,
            orders_per_account_max: config.limits.orders_per_account_max,
            ..engine::Limits::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_table_names_every_limit_by_its_key() {
        // Each key given a value one more than its default: deserialized, every field moved,
        // so every field is in the table under its TOML name.
        let defaults = Limits::default();
        let text: String = defaults
            .table()
            .iter()
            .map(|(key, value, _)| format!("{key} = {}\n", value + 1))
            .collect();
        let moved: Limits = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let back: Vec<u64> = moved.table().iter().map(|(_, v, _)| *v).collect();
        let want: Vec<u64> = defaults.table().iter().map(|(_, v, _)| v + 1).collect();
        assert_eq!(back, want);
        let fields = format!("{defaults:?}").matches(": ").count();
        assert_eq!(
            fields,
            defaults.table().len(),
            "a field missing from the table"
        );
    }

    #[test]
    fn unknown_keys_are_errors_and_layers_apply_in_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nbogus = 1\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = Config::from_file(&path).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");

        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\ndurability = \"async\"\n[limits]\nqueue_depth = 8\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let overrides = Overrides {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:7001".parse().unwrap_or_else(|e| panic!("{e}"))),
            ..Overrides::default()
        };
        let c = Config::load(&overrides).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.listen.port(), 7001, "flag beats file");
        assert_eq!(c.durability, Durability::Async, "file beats default");
        assert_eq!(c.limits.queue_depth, 8);
        assert_eq!(c.limits.batch_max, Limits::default().batch_max);

        std::fs::write(&path, "[limits]\nqueue_depth = 0\n").unwrap_or_else(|e| panic!("{e}"));
        let err = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("limits.queue_depth"), "{err}");
    }

    #[test]
    fn market_limits_are_read_and_a_zero_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            Config::load(&Overrides {
                config: Some(path.clone()),
                ..Overrides::default()
            })
        };
        assert_eq!(Config::default().market, MarketSection::default());
        let c = load("[market]\nposition_limit_t = 1000000\nlarge_holder_t = 500000\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.market.position_limit_t, Some(1_000_000));
        assert_eq!(c.market.large_holder_t, Some(500_000));
        let err = load("[market]\nlarge_holder_t = 0\n").unwrap_err();
        assert!(err.to_string().contains("market.large_holder_t"), "{err}");
        assert!(
            load("[market]\nposition_limit = 5\n").is_err(),
            "unknown key"
        );
    }
}
