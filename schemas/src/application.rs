//! LoRaWAN applications: which commune and domain an application's devices
//! belong to, and how its decoded payload's keys map to attributes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::attribute::Attribute;
use crate::domain::Domain;

fn one() -> f64 {
    1.0
}

/// A source key of a decoded payload mapped onto an attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The key in `decoded_payload` (The Things Stack) or `object` (ChirpStack).
    pub source: String,
    /// The Smart Data Models attribute it becomes, e.g. `fillingLevel`.
    pub attribute: String,
    /// Multiplier applied to the source number (default 1).
    #[serde(default = "one")]
    pub scale: f64,
    /// Added after scaling (default 0).
    #[serde(default)]
    pub offset: f64,
}

/// What the configuration says about one LoRaWAN application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationConfig {
    /// The commune its devices are in.
    pub commune: String,
    /// The service its devices belong to.
    pub domain: Domain,
    /// Source keys that differ from the attribute names.
    #[serde(default)]
    pub fields: Vec<FieldMapping>,
}

/// A validated field mapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mapping {
    /// The attribute the source key becomes.
    pub attribute: Attribute,
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
}

/// A validated application.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Commune of its devices.
    pub commune: String,
    /// Domain of its devices.
    pub domain: Domain,
    fields: HashMap<String, Mapping>,
}

impl Application {
    /// How a decoded-payload key is read: a configured mapping, else the
    /// attribute of the same name with no scaling, else `None` (unknown key).
    pub fn mapping(&self, key: &str) -> Option<Mapping> {
        mapping(Some(&self.fields), self.domain, key)
    }
}

fn mapping(
    fields: Option<&HashMap<String, Mapping>>,
    domain: Domain,
    key: &str,
) -> Option<Mapping> {
    fields
        .and_then(|fields| fields.get(key))
        .copied()
        .or_else(|| {
            Attribute::from_key(domain, key).map(|attribute| Mapping {
                attribute,
                scale: 1.0,
                offset: 0.0,
            })
        })
}

/// An [`Application`] as the decoders read it: borrowed from the
/// configuration, or named by convention without a copy of its commune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AppRef<'a> {
    /// Commune of its devices.
    pub(crate) commune: &'a str,
    /// Domain of its devices.
    pub(crate) domain: Domain,
    /// The configured field map, if configured.
    fields: Option<&'a HashMap<String, Mapping>>,
}

impl AppRef<'_> {
    /// As [`Application::mapping`].
    pub(crate) fn mapping(&self, key: &str) -> Option<Mapping> {
        mapping(self.fields, self.domain, key)
    }
}

/// An error in the application configuration, naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("applications.{path}: {message}")]
pub struct ApplicationError {
    /// Path below `applications`, e.g. `rabat-waste.fields[0].attribute`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Every configured application, by application id (The Things Stack
/// application id, or ChirpStack application id or name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applications {
    by_id: HashMap<String, Application>,
}

impl Applications {
    /// Validates a configuration: every commune is a valid identifier, every
    /// mapped attribute exists in the application's domain and is numeric
    /// when scaled, and every scale and offset is finite.
    pub fn new(config: &HashMap<String, ApplicationConfig>) -> Result<Self, ApplicationError> {
        let mut by_id = HashMap::with_capacity(config.len());
        for (id, app) in config {
            let err = |path: String, message: String| ApplicationError {
                path: format!("{id}.{path}"),
                message,
            };
            if !crate::topic::is_valid_id(&app.commune) {
                return Err(err(
                    "commune".into(),
                    format!("{:?} must match [A-Za-z0-9_.:-]{{1,64}}", app.commune),
                ));
            }
            let mut fields = HashMap::with_capacity(app.fields.len());
            for (i, f) in app.fields.iter().enumerate() {
                let attribute = Attribute::from_key(app.domain, &f.attribute).ok_or_else(|| {
                    err(
                        format!("fields[{i}].attribute"),
                        format!("{:?} is not an attribute of {}", f.attribute, app.domain),
                    )
                })?;
                if !f.scale.is_finite() || !f.offset.is_finite() {
                    return Err(err(
                        format!("fields[{i}]"),
                        "scale and offset must be finite".into(),
                    ));
                }
                let scaled = f.scale != 1.0 || f.offset != 0.0;
                if scaled && !matches!(attribute.kind(), crate::Kind::Number { .. }) {
                    return Err(err(
                        format!("fields[{i}]"),
                        format!("{} is not numeric, so it cannot be scaled", f.attribute),
                    ));
                }
                let mapping = Mapping {
                    attribute,
                    scale: f.scale,
                    offset: f.offset,
                };
                if fields.insert(f.source.clone(), mapping).is_some() {
                    return Err(err(
                        format!("fields[{i}].source"),
                        format!("{:?} is mapped twice", f.source),
                    ));
                }
            }
            by_id.insert(
                id.clone(),
                Application {
                    commune: app.commune.clone(),
                    domain: app.domain,
                    fields,
                },
            );
        }
        Ok(Self { by_id })
    }

    /// The configured application, if any.
    pub fn get(&self, id: &str) -> Option<&Application> {
        self.by_id.get(id)
    }

    /// [`Applications::resolve`] without copying anything.
    pub(crate) fn find<'a>(&'a self, id: &'a str) -> Option<AppRef<'a>> {
        if let Some(app) = self.by_id.get(id) {
            return Some(AppRef {
                commune: &app.commune,
                domain: app.domain,
                fields: Some(&app.fields),
            });
        }
        let (commune, domain) = id.rsplit_once('-')?;
        let domain = Domain::parse(domain)?;
        crate::topic::is_valid_id(commune).then_some(AppRef {
            commune,
            domain,
            fields: None,
        })
    }

    /// The application of an id: the configured one, else one named by the
    /// convention `{commune}-{domain}` (e.g. `rabat-waste`) with no field map.
    pub fn resolve(&self, id: &str) -> Option<std::borrow::Cow<'_, Application>> {
        if let Some(app) = self.by_id.get(id) {
            return Some(std::borrow::Cow::Borrowed(app));
        }
        let (commune, domain) = id.rsplit_once('-')?;
        let domain = Domain::parse(domain)?;
        crate::topic::is_valid_id(commune).then(|| {
            std::borrow::Cow::Owned(Application {
                commune: commune.to_owned(),
                domain,
                fields: HashMap::new(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(attribute: &str, scale: f64) -> HashMap<String, ApplicationConfig> {
        HashMap::from([(
            "rabat-bins".to_owned(),
            ApplicationConfig {
                commune: "rabat".into(),
                domain: Domain::Waste,
                fields: vec![FieldMapping {
                    source: "fill_pct".into(),
                    attribute: attribute.into(),
                    scale,
                    offset: 0.0,
                }],
            },
        )])
    }

    #[test]
    fn mappings_resolve_configured_then_by_name() {
        let apps = Applications::new(&config("fillingLevel", 0.01)).expect("valid");
        let app = apps.resolve("rabat-bins").expect("configured");
        let m = app.mapping("fill_pct").expect("mapped");
        assert_eq!((m.attribute, m.scale), (Attribute::FillingLevel, 0.01));
        assert_eq!(
            app.mapping("temperature").map(|m| m.attribute),
            Some(Attribute::Temperature)
        );
        assert_eq!(app.mapping("battery_mv"), None);
    }

    #[test]
    fn found_applications_are_those_resolved() {
        let apps = Applications::new(&config("fillingLevel", 0.01)).expect("valid");
        for id in [
            "rabat-bins",
            "rabat-waste",
            "casablanca-lighting",
            "sale-traffic",
            "a-b-waste",
            "rabat-parking",
            "rabat",
            "-waste",
            "rabat bins-waste",
        ] {
            let found = apps.find(id);
            let resolved = apps.resolve(id);
            assert_eq!(found.is_some(), resolved.is_some(), "{id}");
            let (Some(found), Some(resolved)) = (found, resolved) else {
                continue;
            };
            assert_eq!(
                (found.commune, found.domain),
                (resolved.commune.as_str(), resolved.domain),
                "{id}"
            );
            for key in ["fill_pct", "fillingLevel", "temperature", "intensity", "x"] {
                assert_eq!(found.mapping(key), resolved.mapping(key), "{id} {key}");
            }
        }
    }

    #[test]
    fn convention_names_commune_and_domain() {
        let apps = Applications::default();
        let app = apps.resolve("casablanca-traffic").expect("by convention");
        assert_eq!(
            (app.commune.as_str(), app.domain),
            ("casablanca", Domain::Traffic)
        );
        assert!(apps.resolve("casablanca-parking").is_none());
        assert!(apps.resolve("nodash").is_none());
    }

    #[test]
    fn bad_configuration_names_the_key() {
        let e = Applications::new(&config("powerConsumption", 1.0)).expect_err("wrong domain");
        assert_eq!(e.path, "rabat-bins.fields[0].attribute");
        let e = Applications::new(&config("status", 2.0)).expect_err("symbol scaled");
        assert_eq!(e.path, "rabat-bins.fields[0]");
        assert!(e
            .to_string()
            .starts_with("applications.rabat-bins.fields[0]: "));
    }
}
