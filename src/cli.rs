//! Command-line interface: the subcommands and their flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The agent's default listen address: loopback only, as exporters do.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";

/// Where the central store is, for `report --prometheus`.
#[derive(clap::Args, Debug, Clone)]
pub struct CentralArgs {
    /// Read the central store (Prometheus or VictoriaMetrics, its
    /// Prometheus HTTP API) instead of journals: its base URL, e.g.
    /// `http://prometheus:9090` or `http://victoria:8428`.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<url::Url>,
    /// A site to report on (repeat it); default every site the store holds.
    /// One site gives the site's report, several the fleet report.
    #[arg(long, requires = "prometheus")]
    pub site: Vec<String>,
    /// The `job` label the agents push with (their remote_write `job`).
    #[arg(long, default_value = "casewatch", requires = "prometheus")]
    pub job: String,
    /// Basic auth: the user name.
    #[arg(long, requires = "prometheus", conflicts_with_all = ["bearer_token_env", "bearer_token_file"])]
    pub basic_auth_user: Option<String>,
    /// Basic auth: the environment variable holding the password.
    #[arg(
        long,
        requires = "basic_auth_user",
        conflicts_with = "basic_auth_password_file"
    )]
    pub basic_auth_password_env: Option<String>,
    /// Basic auth: the file holding the password.
    #[arg(long, requires = "basic_auth_user")]
    pub basic_auth_password_file: Option<PathBuf>,
    /// The environment variable holding a bearer token.
    #[arg(long, requires = "prometheus", conflicts_with = "bearer_token_file")]
    pub bearer_token_env: Option<String>,
    /// The file holding a bearer token.
    #[arg(long, requires = "prometheus")]
    pub bearer_token_file: Option<PathBuf>,
    /// A PEM file of CA certificates to trust for the store.
    #[arg(long, requires = "prometheus")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the store's certificate.
    #[arg(long, requires = "prometheus")]
    pub insecure_skip_verify: bool,
    /// The longest one request to the store may take.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "prometheus")]
    pub store_timeout: Duration,
}

/// `casewatch sim --help`: what there is to sign in to and click on, so the
/// simulator can be used as a target without reading its code. A test holds
/// it to the simulator's routes and the embedded profile's users.
pub const SIM_HELP: &str = "Run the simulated ICS (the case-recording system) and CSS (the reporting \
system above it): a case system to learn casewatch on, with the freezes, \
forced logouts, slow reports and restarts of its fault profile.

Users: the profile's `users`; the embedded profile (config/sim.yaml) has \
sw.demo, sw.north and sw.south. Every user has the one password the \
simulator reads at start from the environment variable --password-env names \
(default CASEWATCH_PASSWORD); it is never in a file.

Pages, the same on the ICS and the CSS (session cookie ICSSESSION or \
CSSSESSION; a page that needs a session redirects to /login without one):
  GET  /login                the sign-in form#login: hidden csrf_token, username, password
  POST /login                form username, password, csrf_token: 303 to /home with the
                             session cookie; a wrong password shows the form again
  GET  /home                 \"Signed in as USER\", the search form#search (input q), and a
                             link to /reports/caseload-summary
  GET  /cases/search?q=NAME  results table#results: a.case-link, href /cases/C-10000 to C-10299
  GET  /api/cases?q=NAME     the same as JSON: {query, count, results: [{id, name, worker}]}
  GET  /cases/ID             the record: h1.case-name, ul#notes, and form#note-form with a
                             hidden csrf_token (the session's token) and textarea note
  POST /cases/ID/notes       form note, csrf_token (from the record page): 303 to
                             /cases/ID?saved=N-..., which says \"Note N-... saved\"; a wrong
                             token is 403 \"Invalid form token\"
  GET  /reports/NAME         a slow management report; p#report-status says complete
  GET  /logout               ends the session: 303 to /login?logged_out=1
  GET  /ping                 \"ok\", no session needed
  GET  /static/app.js        the pages' script (a page hang runs here)

Control API (with --control, on the ICS only; JSON bodies, in which \
\"system\" is \"ics\" (the default) or \"css\"):
  POST /_control/freeze        {\"seconds\": 5, \"system\": \"ics\"}
  POST /_control/logout        {\"which\": \"all\"|\"oldest\", \"count\": 1}
  POST /_control/capacity      {\"workers\": 4, \"report_weight\": 6}
  POST /_control/reports       {\"on\": \"ics\"|\"css\"}
  POST /_control/latency       {\"extra_ms\": 300}
  POST /_control/errors        {\"status\": 500, \"count\": 10}
  POST /_control/logout_style  {\"style\": \"redirect\"|\"status_401\"|\"status_403\"|\"status_440\"|
                               \"expired_page\"|\"cookie_cleared\"|\"login_page\"}
  POST /_control/restart       {\"seconds\": 8}
  POST /_control/page_hang     {\"seconds\": 3, \"count\": 1}
  GET  /_control/truth         every fault, injected or random (?since=ID for the newer ones)
  GET  /_control/sessions      live sessions and their ages
  GET  /_control/stats         load and capacity";

#[derive(Debug, Parser)]
#[command(
    name = "casewatch",
    version,
    about = "A synthetic social worker: measures freezes, forced logouts and latency of a case-recording system."
)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug` or `debug,reqwest=debug` (also
    /// RUST_LOG). A bare level is casewatch's; other crates log at warn
    /// unless named, and the HTML parsers never do.
    #[arg(long, global = true, env = "CASEWATCH_LOG", default_value = crate::logging::DEFAULT_FILTER)]
    pub log: String,
    /// How log lines are written on standard error: `text` for people,
    /// `json` (one object per line) for a log stack.
    #[arg(long, global = true, env = "CASEWATCH_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent on its timetable until stopped.
    Run {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Where to serve /metrics, health and the status page.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// The journal file; overrides the config's `journal.path`.
        #[arg(long)]
        journal: Option<PathBuf>,
        /// At shutdown, how long runs in flight get to finish.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        stop_deadline: Duration,
        /// TLS and basic auth for the web endpoints, in the Prometheus
        /// exporter-toolkit web-config format.
        #[arg(long = "web.config.file")]
        web_config: Option<PathBuf>,
    },
    /// Run each journey once and print a per-step table (for writing journeys).
    Once {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Run only this journey.
        #[arg(long)]
        journey: Option<String>,
    },
    /// Check a configuration file and print every problem with its line:
    /// the file itself, then what `run` will need from this machine (each
    /// secret's environment variable or file, the browser when a journey
    /// runs in one, a writable folder for the journal and queues).
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
        /// Check the file only, not this machine: for a config written for
        /// another host.
        #[arg(long)]
        offline: bool,
    },
    /// Run the simulated ICS and CSS: a case system to learn casewatch on.
    #[command(long_about = SIM_HELP)]
    Sim {
        /// Fault profile; the embedded demo profile when not given.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Where the simulated ICS (the case-recording system) listens.
        #[arg(long, default_value = "127.0.0.1:8181")]
        ics_listen: SocketAddr,
        /// Where the simulated CSS (the reporting system) listens.
        #[arg(long, default_value = "127.0.0.1:8182")]
        css_listen: SocketAddr,
        /// Enable the control API (fault injection and truth log) under /_control.
        #[arg(long)]
        control: bool,
        /// Environment variable holding the password the simulator accepts.
        #[arg(long, default_value = "CASEWATCH_PASSWORD")]
        password_env: String,
    },
    /// Write the board's evidence report from a journal, or from the
    /// central Prometheus or VictoriaMetrics the agents push to.
    ///
    /// The format is --format if given, else the --out file's extension
    /// (.html, .md, .json, .pdf), else Markdown on standard output. PDF
    /// (the board pack: cover, whole tables, numbered pages) is printed by
    /// headless Chromium (Debian's `chromium`) and needs --out.
    Report {
        /// The journal file (SQLite) the agent or demo wrote. Repeat it, or
        /// name a folder (its `*.db` files), for one report over several
        /// sites: per-site tables, pooled figures, "is one office worse?".
        #[arg(
            long,
            required_unless_present = "prometheus",
            conflicts_with = "prometheus"
        )]
        journal: Vec<PathBuf>,
        #[command(flatten)]
        central: Box<CentralArgs>,
        /// Start of the period: RFC 3339 (`2026-06-01T00:00:00Z`) or a time
        /// ago (`7d`, `12h`). Default: the journal's first run.
        #[arg(long)]
        from: Option<String>,
        /// End of the period, as --from. Default: the journal's last run.
        #[arg(long)]
        to: Option<String>,
        /// Where to write the report; standard output when not given.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// The report's format; see above for the default.
        #[arg(long, value_enum)]
        format: Option<crate::report::Format>,
        /// The session age the "log out every two hours" rule is tested at
        /// (default 2h, or the second age band edge when bands are scaled down).
        #[arg(long, value_parser = humantime::parse_duration)]
        rule_age: Option<Duration>,
        /// `month` adds a table per calendar month; `all` leaves it out.
        /// Default: a table per month when the period spans more than a month.
        #[arg(long, value_enum, default_value_t = crate::report::model::Period::Auto)]
        period: crate::report::model::Period,
    },
    /// Export a journal's series: OpenMetrics text (for `promtool tsdb
    /// create-blocks-from openmetrics`) or HdrHistogram interval logs.
    Export {
        /// The journal file (SQLite) to export.
        #[arg(long)]
        journal: PathBuf,
        /// `openmetrics` for a Prometheus backfill, `hlog` for HdrHistogram
        /// interval logs.
        #[arg(long, value_enum)]
        format: crate::report::export::ExportFormat,
        /// Start of the period, as for `report`.
        #[arg(long)]
        from: Option<String>,
        /// End of the period, as for `report`.
        #[arg(long)]
        to: Option<String>,
        /// Where to write; standard output when not given.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Keep a journal: bring an older one to this version's schema, or
    /// fold its old hours into rollups so that it stays small for years.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Start the simulator and the agent against it, with the embedded config.
    Demo {
        /// How long to run; until interrupted when not given.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Where to serve the agent's metrics and status page. Not given:
        /// 127.0.0.1:9898, or a free port when that one is busy (the
        /// address is printed).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where the simulated ICS listens (port 0: a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        ics_listen: SocketAddr,
        /// Where the simulated CSS listens (port 0: a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        css_listen: SocketAddr,
        /// Fault profile for the simulator; the embedded demo profile when not given.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Agent config; the embedded demo config when not given. Targets named
        /// `ics` and `css` are pointed at the simulator.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The journal file the demo writes.
        #[arg(long, default_value = "casewatch-demo.db")]
        journal: PathBuf,
        /// Also write a seeded history to this file first: six weeks of one
        /// office at production rates whose truth is known, on which the
        /// report answers the board's questions (the file is replaced).
        #[arg(long)]
        history: Option<PathBuf>,
        /// TLS and basic auth for the web endpoints (exporter-toolkit format).
        #[arg(long = "web.config.file")]
        web_config: Option<PathBuf>,
    },
}

/// `casewatch journal ...`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Bring a journal written by an older casewatch to this version's
    /// schema (the agent does this itself when it opens a journal).
    Migrate {
        /// The journal file.
        journal: PathBuf,
    },
    /// Fold every calendar hour older than --older-than into one rollup
    /// row and delete its rows: reports read the rollups exactly as they
    /// read the rows, so the board's evidence is kept while the file stays
    /// small. The per-minute HdrHistogram rows of those hours go too.
    Compact {
        /// The journal file.
        journal: PathBuf,
        /// Fold hours older than this (`37d`, `8w`); at least a day.
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Duration,
    },
}
