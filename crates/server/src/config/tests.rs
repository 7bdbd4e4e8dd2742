//! The layering of sources, the messages of mistakes, and the README's table.

use std::collections::HashMap;

use super::*;

fn load(vars: &[(&str, &str)], file: Option<&str>, bind_flag: Option<&str>) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = file.map(|text| {
        let path = dir.path().join("conduit.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let env = move |name: &str| vars.get(name).cloned();
    let default_file = dir.path().join("absent.toml");
    let flags = bind_flag.map(|bind| vec!["--bind".to_owned(), bind.to_owned()]).unwrap_or_default();
    Config::load(Sources { file: path, default_file, env: &env, flags })
}

#[test]
fn defaults_apply_with_nothing_set() {
    let config = load(&[], None, None).unwrap();
    assert_eq!(config.bind.to_string(), DEFAULT_BIND);
    assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
    assert!(config.jwt_secret.is_none());
    assert_eq!(config.token_ttl, chrono::Duration::hours(24));
}

#[test]
fn env_beats_file_and_flag_beats_env() {
    let file = "bind = \"127.0.0.1:4000\"\ndatabase_url = \"sqlite://file.db\"\ntoken_ttl_secs = 60\n";
    let config = load(&[], Some(file), None).unwrap();
    assert_eq!((config.bind.port(), config.database_url.as_str()), (4000, "sqlite://file.db"));
    assert_eq!(config.token_ttl, chrono::Duration::seconds(60));

    let env = [("CONDUIT_BIND", "127.0.0.1:5000"), ("DATABASE_URL", "sqlite://env.db")];
    let config = load(&env, Some(file), None).unwrap();
    assert_eq!((config.bind.port(), config.database_url.as_str()), (5000, "sqlite://env.db"));

    let config = load(&env, Some(file), Some("127.0.0.1:6000")).unwrap();
    assert_eq!(config.bind.port(), 6000);
}

#[test]
fn mistakes_are_one_line_naming_the_setting() {
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>, &'a str);
    let cases: &[Case] = &[
        (&[("CONDUIT_BIND", "nonsense")], None, "invalid CONDUIT_BIND 'nonsense'"),
        (&[("CONDUIT_JWT_SECRET", "short")], None, "CONDUIT_JWT_SECRET is too short"),
        (&[("CONDUIT_TOKEN_TTL_SECS", "-5")], None, "invalid CONDUIT_TOKEN_TTL_SECS"),
        (&[("CONDUIT_LOG_FORMAT", "xml")], None, "invalid CONDUIT_LOG_FORMAT 'xml': expected json or pretty"),
        (&[("CONDUIT_UNVERIFIED_USERS", "some")], None, "expected all or read or none"),
        (&[("CONDUIT_DB_POOL_SIZE", "1001")], None, "'1001': expected a whole number from 1 to 1000"),
        (&[("CONDUIT_MAILS_PER_HOUR", "0")], None, "'0': expected a whole number of at least 1"),
        (&[("CONDUIT_REQUEST_TIMEOUT", "0")], None, "invalid CONDUIT_REQUEST_TIMEOUT '0'"),
        (&[("CONDUIT_MAX_CONCURRENCY", "many")], None, "invalid CONDUIT_MAX_CONCURRENCY"),
        (&[("CONDUIT_SHUTDOWN_GRACE", "-1")], None, "invalid CONDUIT_SHUTDOWN_GRACE"),
        (&[("CONDUIT_HEADER_TIMEOUT", "never")], None, "invalid CONDUIT_HEADER_TIMEOUT 'never'"),
        (&[("CONDUIT_DB_POOL_SIZE", "0")], None, "invalid CONDUIT_DB_POOL_SIZE '0'"),
        (&[("CONDUIT_METRICS_BIND", "9100")], None, "invalid CONDUIT_METRICS_BIND"),
        (&[("CONDUIT_ALLOWED_ORIGINS", "https://a.example/path")], None, "invalid origin"),
        (&[("CONDUIT_GZIP", "maybe")], None, "invalid CONDUIT_GZIP 'maybe': expected true or false"),
        (&[("CONDUIT_TRUSTED_PROXIES", "10.0.0.0/40")], None, "invalid CONDUIT_TRUSTED_PROXIES"),
        (&[("CONDUIT_LOGIN_ATTEMPTS", "0")], None, "invalid CONDUIT_LOGIN_ATTEMPTS"),
        (&[("CONDUIT_SECURE_COOKIES", "yes please")], None, "invalid CONDUIT_SECURE_COOKIES"),
        (&[("CONDUIT_REGISTRATIONS_PER_HOUR", "0")], None, "invalid CONDUIT_REGISTRATIONS_PER_HOUR '0'"),
        (&[("CONDUIT_REAUTH_WINDOW", "soon")], None, "invalid CONDUIT_REAUTH_WINDOW 'soon'"),
        (&[("CONDUIT_BODY_TIMEOUT", "0")], None, "invalid CONDUIT_BODY_TIMEOUT '0'"),
        (&[("CONDUIT_HASH_QUEUE", "-1")], None, "invalid CONDUIT_HASH_QUEUE '-1'"),
        (&[("CONDUIT_HASH_QUEUE", "1024")], None, "expected a whole number below CONDUIT_MAX_CONCURRENCY"),
        (&[], Some("max_concurrency = 0"), "invalid max_concurrency in the config file '0'"),
        (&[], Some("bnid = \"x\""), "unknown key 'bnid'"),
        (&[("CONDUIT_SMTP_URL", "smtp://mail.example.com:587")], None, "set CONDUIT_PUBLIC_URL"),
        (&[], Some("bind = "), "invalid config file"),
    ];
    for (env, file, expected) in cases {
        let message = load(env, *file, None).unwrap_err().0;
        assert!(message.contains(expected), "{message:?} should mention {expected:?}");
        assert!(!message.contains('\n'), "{message:?} should be one line");
    }
}

#[test]
fn a_rejected_flag_is_named_even_when_a_variable_sets_the_same_setting() {
    let message = load(&[("CONDUIT_BIND", "127.0.0.1:5000")], None, Some("nonsense")).unwrap_err().0;
    assert!(message.contains("invalid --bind 'nonsense'"), "{message:?}");
    let message = load(&[("CONDUIT_BIND", "nonsense")], None, Some("127.0.0.1:6000"));
    assert_eq!(message.map(|c| c.bind.port()).ok(), Some(6000), "the flag beats a bad variable");
}

#[test]
fn operational_settings_layer_like_the_rest() {
    let config = load(&[], None, None).unwrap();
    assert_eq!(config.http.request_timeout, Duration::from_secs(30));
    assert_eq!((config.header_read_timeout, config.db_pool_size), (Duration::from_secs(10), None));
    assert_eq!((config.http.max_concurrency, config.http.body_limit), (1024, 1024 * 1024));
    assert_eq!((config.shutdown_grace, config.metrics_bind), (Duration::from_secs(30), None));
    assert!(config.http.allowed_origins.is_empty());

    let file =
        "request_timeout_secs = 2.5\nallowed_origins = [\"https://a.example\"]\nmetrics_bind = \"127.0.0.1:9100\"\n";
    let config = load(&[("CONDUIT_MAX_CONCURRENCY", "8")], Some(file), None).unwrap();
    assert_eq!(config.http.request_timeout, Duration::from_millis(2500));
    assert_eq!(config.http.max_concurrency, 8);
    assert_eq!(config.http.allowed_origins, ["https://a.example"]);
    assert_eq!(config.metrics_bind.unwrap().port(), 9100);

    let env = [("CONDUIT_ALLOWED_ORIGINS", "https://a.example, http://localhost:5173")];
    let config = load(&env, Some(file), None).unwrap();
    assert_eq!(config.http.allowed_origins, ["https://a.example", "http://localhost:5173"]);
}

#[test]
fn flags_take_every_setting_and_beat_the_environment() {
    let env = [("CONDUIT_GZIP", "true"), ("CONDUIT_MAX_CONCURRENCY", "8")];
    let flags = ["--gzip", "false", "--request-timeout-secs", "1.5", "--trusted-proxies", "10.0.0.0/8,::1"];
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<&str, &str> = env.into_iter().collect();
    let config = Config::load(Sources {
        file: None,
        default_file: dir.path().join("absent.toml"),
        env: &|name| vars.get(name).map(|v| v.to_string()),
        flags: flags.iter().map(|f| f.to_string()).collect(),
    })
    .unwrap();
    assert!(!config.http.gzip);
    assert_eq!(config.http.max_concurrency, 8);
    assert_eq!(config.http.request_timeout, Duration::from_millis(1500));
    assert_eq!(config.http.trusted_proxies.len(), 2);
}

#[test]
fn declared_defaults_are_the_defaults() {
    let config = load(&[], None, None).unwrap();
    assert_eq!(config.http, HttpSettings::default());
    assert!(config.http.gzip && !config.http.secure_cookies);
    assert_eq!(config.accounts.reauth_window, Duration::from_secs(600));
    assert!(config.limits.hash_queue(config.http.max_concurrency) < config.http.max_concurrency);
}

/// The README's settings table lists exactly the declared settings, each with its
/// environment variable, file key and default.
#[test]
fn the_readme_table_matches_the_declarations() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|line| !line.starts_with("| Variable | Flag | `conduit.toml` key | Default |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| line.split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect();
    let declared = Config::settings();
    assert_eq!(rows.len(), declared.len() + OTHER_ENV_VARS.len(), "one README row per setting");
    for setting in &declared {
        let row = rows
            .iter()
            .find(|row| row[1] == format!("`{}`", setting.env))
            .unwrap_or_else(|| panic!("no README row for {}", setting.env));
        assert_eq!(row[2], format!("`{}`", setting.flag), "{}", setting.env);
        assert_eq!(row[3], format!("`{}`", setting.key), "{}", setting.env);
        if let Some(default) = &setting.default {
            assert!(
                row[4].contains(&format!("`{default}`")),
                "{}: README default {} vs {default}",
                setting.env,
                row[4]
            );
        }
    }
    for (name, _) in OTHER_ENV_VARS {
        assert!(rows.iter().any(|row| row[1].contains(name)), "no README row for {name}");
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let secret = "s".repeat(40);
    let config = load(&[("CONDUIT_JWT_SECRET", &secret)], None, None).unwrap();
    assert!(!format!("{config:?}").contains(&secret));
    assert_eq!(secrecy::ExposeSecret::expose_secret(&config.jwt_secret.unwrap()), secret);
}
