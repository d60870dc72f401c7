//! Unit tests of `auks.conf` parsing: shared helpers and sample files here,
//! the grammar in `grammar.rs`, the typed blocks in `typed.rs`.

use super::*;

mod grammar;
mod typed;

const P: &str = "/etc/auks/auks.conf";

fn parse(text: &str) -> Result<ConfFile, ConfigError> {
    parse_str(text, Path::new(P))
}

fn syntax_err(text: &str) -> (usize, String) {
    match parse(text) {
        Err(ConfigError::Syntax { line, message, .. }) => (line, message),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

fn client(text: &str) -> Result<ClientConfig, ConfigError> {
    ClientConfig::from_conf(&parse(text)?)
}

fn daemon(text: &str) -> Result<DaemonConfig, ConfigError> {
    DaemonConfig::from_conf(&parse(text)?)
}

const DEPLOYMENT: &str = r#"common {
 PrimaryHost = "auks.example.com" ;
 PrimaryAddress = "" ;
 PrimaryPort = 12345 ;
 PrimaryPrincipal = "host/auks.example.com@EXAMPLE.COM" ;
 SecondaryHost = "auks2" ;
 SecondaryAddress = "10.0.0.2" ;
 SecondaryPort = "12345" ;
 SecondaryPrincipal = "host/auks2@EXAMPLE.COM" ;
 NAT = no ;
 Retries = 3 ;
 Timeout = 10 ;
 Delay = 3 ;
}
api {
 LogFile = "/tmp/auksapi.log" ;
 LogLevel = "0" ;
 DebugFile = "/tmp/auksapi.log" ;
 DebugLevel = "0" ;
}
auksd {
 PrimaryKeytab = "/etc/krb5.keytab" ;
 SecondaryKeytab = "/etc/krb5.keytab" ;
 LogFile = "/var/log/auksd.log" ;
 LogLevel = "2" ;
 DebugFile = "/var/log/auksd.log" ;
 DebugLevel = "0" ;
 CacheDir = "/var/cache/auks" ;
 ACLFile = "/etc/auks/auks.acl" ;
 NbWorkers = "10" ;
 QueueSize = "50" ;
 RepoSize = "1000" ;
 CleanDelay = "300" ;
}
renewer {
 LogFile = "/var/log/auksdrenewer.log" ;
 LogLevel = "1" ;
 DebugFile = "/var/log/auksdrenewer.log" ;
 DebugLevel = "0" ;
 Delay = "60" ;
 MinLifeTime = "600" ;
}
"#;

/// Layout of the example file shipped with the C sources: banner
/// comments, tabs around '=', commented-out keys, blank lines, a quoted
/// value directly followed by ';', C key spellings.
const C_EXAMPLE_STYLE: &str = "#----------------\n\
# auks configuration\n\
#----------------\n\
\n\
common {\n\
\n\
 # Primary daemon configuration\n\
 PrimaryHost        = \t\"auks\" ;\n\
 #PrimaryAddress     = \t\"\" ;\n\
 PrimaryPort        = \t12345 ;\n\
 PrimaryPrincipal   = \t\"host/auks.realm.org@REALM.ORG\";\n\
 SecondaryHost      = \t\"auks2\" ;\n\
 CrossRealm         =\t\"\" ;\n\
 NAT                =  \tyes ;\n\
 Retries            =\t 3 ;\n\
 Timeout            =   10 ;\n\
 Delay              =    3 ;\n\
\n\
}\n\
\n\
api {\n\
 # log file\n\
 LogFile            =  \t\"/var/log/auksapi.log\" ;\n\
 LogLevel           =  \t\"0\" ;\n\
 UseSyslog          =  \t1 ;\n\
}\n\
\n\
auksd {\n\
 PrimaryKeytab      = \t\"/etc/krb5.keytab\" ;\n\
 QueueSize          =  \t50 ;\n\
 RepoSize           = \t500 ;\n\
 Workers            =  \t10 ;\n\
 CleanDelay         = \t300 ;\n\
 ReplayCache        = \tyes ;\n\
}\n\
\n\
renewer {\n\
 Delay              = \t60 ;\n\
 Minlifetime        = \t600 ;\n\
}\n";

/// Value of `key` in `block` (case-insensitive, first occurrence wins).
fn get<'a>(block: &'a Block, key: &str) -> Option<&'a str> {
    block.entry(key).map(|e| e.value.as_str())
}
