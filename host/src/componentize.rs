//! A rule's core module made into a component, and the component checked
//! against the contract (`wit/policy.wit`): it exports the `policy` interface
//! of the `rule` world and imports nothing but `palisade:policy` interfaces.
//!
//! One code path for every component Palisade builds: `host/build.rs` includes
//! this file (`#[path = "src/componentize.rs"]`) for the built-in rules, and
//! `palisade build` uses it through the library for rule crates anywhere. So it
//! needs nothing but `std` and `wit-component`.

use std::fmt;

/// The package every interface of the contract belongs to.
pub const PACKAGE: &str = "palisade:policy";

/// Why a module could not become a component of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `wit-component` refused the module (no component type section, an
    /// import it cannot place...).
    Encode(String),
    /// The bytes are not a component whose interfaces can be read.
    Decode(String),
    /// The component does not export `palisade:policy/policy`.
    NoPolicyExport { exports: Vec<String> },
    /// The rule imports what the host does not provide (WASI, another package).
    ForeignImports(Vec<String>),
    /// It imports `palisade:policy` interfaces of another version than it exports.
    MixedVersions { export: String, import: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Encode(e) => write!(f, "cannot make the module a component: {e}"),
            Error::Decode(e) => write!(f, "cannot read the component's imports and exports: {e}"),
            Error::NoPolicyExport { exports } => write!(
                f,
                "the component does not export {PACKAGE}/policy (it exports {}): a rule crate calls \
                 palisade_sdk::export_rule! or export_pod_rule!",
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            ),
            Error::ForeignImports(imports) => write!(
                f,
                "the rule imports {}, which the host does not provide: policies run with only \
                 the {PACKAGE} interfaces (no WASI: no files, environment, clock or network); build for \
                 wasm32-unknown-unknown and remove what pulls the import in",
                imports.join(", ")
            ),
            Error::MixedVersions { export, import } => {
                write!(f, "the component exports {export} but imports {import}: one contract version for both")
            }
        }
    }
}

impl std::error::Error for Error {}

/// What a component imports and exports, as WIT names
/// (`palisade:policy/types@0.3.2`, `wasi:cli/environment@0.2.0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interfaces {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// A core module built for `wasm32-unknown-unknown` with the SDK's bindings
/// (their component type is embedded in a custom section) → a component.
pub fn encode(module: &[u8]) -> Result<Vec<u8>, Error> {
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(|e| {
            let text = format!("{e:#}");
            // A module importing an interface of no world it was built with
            // (`#[link(wasm_import_module = "wasi:...")]`): refused as the
            // component's foreign imports are, by name.
            match unknown_import(&text) {
                Some(name) if contract_version(name).is_none() => Error::ForeignImports(vec![name.to_string()]),
                _ => Error::Encode(text),
            }
        })
}

/// The interface named in wit-component's "module requires an import
/// interface named `NAME`".
fn unknown_import(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("requires an import interface named `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// The interfaces a component imports and exports.
pub fn interfaces(component: &[u8]) -> Result<Interfaces, Error> {
    let decoded = wit_component::decode(component).map_err(|e| Error::Decode(format!("{e:#}")))?;
    let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
        return Err(Error::Decode("it is a WIT package, not a component".into()));
    };
    let world = &resolve.worlds[world];
    let names = |keys: Vec<String>| {
        let mut keys = keys;
        keys.sort();
        keys
    };
    Ok(Interfaces {
        imports: names(world.imports.keys().map(|k| resolve.name_world_key(k)).collect()),
        exports: names(world.exports.keys().map(|k| resolve.name_world_key(k)).collect()),
    })
}

/// The imports that are not `palisade:policy` interfaces (WASI, other
/// packages, bare functions): what a component needs beyond the contract.
pub fn foreign_imports(interfaces: &Interfaces) -> Vec<String> {
    interfaces.imports.iter().filter(|name| contract_version(name).is_none()).cloned().collect()
}

/// The version of a `palisade:policy/NAME@VERSION` interface name, if it is one.
fn contract_version(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let (interface, version) = rest.split_once('@')?;
    (!interface.is_empty() && !version.is_empty()).then_some(version)
}

/// Check a component against the contract: it exports `palisade:policy/policy`
/// and imports only `palisade:policy` interfaces of the same version. Returns
/// that contract version (`0.3.2`); whether the host runs it is the runtime's
/// word.
pub fn check_contract(component: &[u8]) -> Result<String, Error> {
    let interfaces = interfaces(component)?;
    let foreign = foreign_imports(&interfaces);
    if !foreign.is_empty() {
        return Err(Error::ForeignImports(foreign));
    }
    let policy = interfaces
        .exports
        .iter()
        .find(|name| name.starts_with(&format!("{PACKAGE}/policy@")))
        .ok_or_else(|| Error::NoPolicyExport { exports: interfaces.exports.clone() })?;
    let version = contract_version(policy).unwrap_or_default().to_string();
    if let Some(other) = interfaces.imports.iter().find(|name| contract_version(name) != Some(version.as_str())) {
        return Err(Error::MixedVersions { export: policy.clone(), import: other.clone() });
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(imports: &[&str]) -> Interfaces {
        Interfaces { imports: imports.iter().map(|s| s.to_string()).collect(), exports: Vec::new() }
    }

    #[test]
    fn foreign_imports_are_everything_outside_the_contract_package() {
        let interfaces = with(&[
            "palisade:policy/inventory@0.3.1",
            "palisade:policy/types@0.3.1",
            "wasi:cli/environment@0.2.0",
            "palisade:policyx/types@0.3.1",
            "palisade:policy/types",
            "log",
        ]);
        assert_eq!(
            foreign_imports(&interfaces),
            ["wasi:cli/environment@0.2.0", "palisade:policyx/types@0.3.1", "palisade:policy/types", "log"]
        );
        assert!(foreign_imports(&with(&["palisade:policy/types@0.2.0"])).is_empty());
    }

    #[test]
    fn a_module_without_the_contract_is_refused_with_the_reason() {
        // The smallest valid core module: it becomes a component that exports nothing.
        let module = b"\0asm\x01\0\0\0";
        let component = encode(module).unwrap();
        assert_eq!(check_contract(&component), Err(Error::NoPolicyExport { exports: Vec::new() }));
        // Bytes that are no WebAssembly at all.
        assert!(matches!(check_contract(b"not wasm"), Err(Error::Decode(_))));
        // Nor is garbage a module.
        assert!(matches!(encode(b"not wasm"), Err(Error::Encode(_))));
    }

    #[test]
    fn every_built_in_rule_meets_the_contract() {
        assert!(!crate::builtin::BUILTIN.is_empty());
        for (name, component) in crate::builtin::BUILTIN {
            assert_eq!(check_contract(component).as_deref(), Ok("0.3.2"), "{name}");
        }
    }

    #[test]
    fn a_wasi_import_is_refused_by_name() {
        let component = wat::parse_str(
            r#"(component
                 (import "palisade:policy/types@0.3.1" (instance))
                 (import "wasi:cli/environment@0.2.0" (instance))
                 (import "wasi:random/random@0.2.0" (instance)))"#,
        )
        .unwrap();
        let interfaces = interfaces(&component).unwrap();
        assert_eq!(foreign_imports(&interfaces), ["wasi:cli/environment@0.2.0", "wasi:random/random@0.2.0"]);
        let error = check_contract(&component).unwrap_err();
        assert_eq!(
            error,
            Error::ForeignImports(vec!["wasi:cli/environment@0.2.0".into(), "wasi:random/random@0.2.0".into()])
        );
        let message = error.to_string();
        assert!(
            message
                .starts_with("the rule imports wasi:cli/environment@0.2.0, wasi:random/random@0.2.0, which the host"),
            "{message}"
        );
        // Without the export, once the imports are the contract's.
        let component = wat::parse_str(r#"(component (import "palisade:policy/types@0.3.1" (instance)))"#).unwrap();
        let error = check_contract(&component).unwrap_err();
        assert_eq!(error, Error::NoPolicyExport { exports: Vec::new() });
    }

    #[test]
    fn a_module_importing_wasi_is_refused_by_name() {
        let module =
            wat::parse_str(r#"(module (import "wasi:cli/environment@0.2.0" "get-arguments" (func (param i32))))"#)
                .unwrap();
        assert_eq!(encode(&module), Err(Error::ForeignImports(vec!["wasi:cli/environment@0.2.0".into()])));
    }

    #[test]
    fn messages_name_the_import_and_the_export() {
        let wasi = Error::ForeignImports(vec!["wasi:cli/environment@0.2.0".into()]);
        assert!(wasi.to_string().starts_with("the rule imports wasi:cli/environment@0.2.0, which"), "{wasi}");
        let none = Error::NoPolicyExport { exports: Vec::new() };
        assert!(none.to_string().contains("(it exports nothing)"), "{none}");
    }
}
