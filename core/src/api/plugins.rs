//! The plugin listing, `GET /api/v1/plugins`: the framework plugins a server uses (built-in
//! and loaded from its plugins dir) and the libraries of its plugins dir it refused, the same
//! listing `previewd plugins --json` prints.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::error::ApiResult;
use crate::api::security::UserAuth;
use crate::api::ApiTags;
use crate::registry::Listing;
use crate::state::AppState;

/// The plugins of the server.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct PluginList {
    /// Every plugin in use: the built-in ones first, in their order, then the ones loaded from
    /// the plugins dir, by file name. When several plugins claim a project the most confident
    /// wins, and a tie goes to the one listed first.
    pub plugins: Vec<PluginInfo>,
    /// The libraries of the plugins dir that are not used, each with the reason. Empty when
    /// every library loaded, or when the server has no plugins dir.
    pub refused: Vec<RefusedPlugin>,
}

/// One plugin.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct PluginInfo {
    /// The plugin's name: what generations show as `framework` when it detects them, and a
    /// `framework` value launch accepts.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The framework names it answers to at launch (`framework` in the launch body).
    pub frameworks: Vec<String>,
    /// What its detection looks for, in words.
    pub looks_for: String,
    /// Whether it is built into previewd (`false`: loaded from the plugins dir).
    pub builtin: bool,
    /// The library it was loaded from, on the server; absent for a built-in plugin.
    #[oai(skip_serializing_if_is_none)]
    pub path: Option<String>,
}

/// A library of the plugins dir that is not used.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct RefusedPlugin {
    /// The library, on the server.
    pub path: String,
    /// Why it is not used, as a sentence about it: not a loadable library, no
    /// `PREVIEWD_PLUGIN` declaration, built for another plugin ABI version (both versions
    /// named), built with panic=abort, failed to describe itself, or a name already taken.
    pub reason: String,
}

impl From<&Listing> for PluginList {
    fn from(listing: &Listing) -> PluginList {
        PluginList {
            plugins: listing
                .plugins
                .iter()
                .map(|p| PluginInfo {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    frameworks: p.frameworks.clone(),
                    looks_for: p.looks_for.clone(),
                    builtin: p.builtin,
                    path: p.path.as_ref().map(|path| path.display().to_string()),
                })
                .collect(),
            refused: listing
                .refused
                .iter()
                .map(|r| RefusedPlugin {
                    path: r.path.display().to_string(),
                    reason: r.reason.clone(),
                })
                .collect(),
        }
    }
}

impl Example for PluginList {
    /// A server with the built-in FastAPI plugin (the others left out), the Koa plugin loaded
    /// and a library built for another plugin ABI refused.
    fn example() -> PluginList {
        PluginList {
            plugins: vec![
                PluginInfo {
                    name: "fastapi".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    frameworks: vec!["fastapi".into()],
                    looks_for: "a Python file creating `FastAPI()`".into(),
                    builtin: true,
                    path: None,
                },
                PluginInfo::example(),
            ],
            refused: vec![RefusedPlugin::example()],
        }
    }
}

impl Example for PluginInfo {
    /// A plugin loaded from the plugins dir (a built-in one has no `path`).
    fn example() -> PluginInfo {
        PluginInfo {
            name: "koa".into(),
            version: "0.1.0".into(),
            frameworks: vec!["koa".into()],
            looks_for: "a package.json that depends on koa, with an entry file".into(),
            builtin: false,
            path: Some("/etc/previewd/plugins/libpreviewd_plugin_koa.so".into()),
        }
    }
}

impl Example for RefusedPlugin {
    fn example() -> RefusedPlugin {
        RefusedPlugin {
            path: "/etc/previewd/plugins/libold_plugin.so".into(),
            reason: "it was built for plugin ABI 0 (previewd-plugin-api 0.0.9), but this \
                     previewd speaks plugin ABI 1 (previewd-plugin-api 0.1.0); rebuild it \
                     against previewd-plugin-api 0.1.0"
                .into(),
        }
    }
}

/// The answer of `listPlugins`.
#[derive(Debug, ApiResponse)]
pub enum PluginsAnswer {
    /// The plugins in use and the refused libraries.
    #[oai(status = 200)]
    Ok(Json<PluginList>),
}

/// Plugin operations.
pub struct PluginsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Meta")]
impl PluginsApi {
    /// List the framework plugins
    ///
    /// The plugins this server detects and launches projects with: the built-in ones and the
    /// third-party ones loaded at start-up from its plugins dir (`--plugins-dir`), in the order
    /// that breaks detection ties, and the libraries of that folder it refused, with the
    /// reason. The same listing as `previewd plugins --json`.
    #[oai(path = "/plugins", method = "get", operation_id = "listPlugins")]
    async fn list(&self, state: Data<&Arc<AppState>>, _auth: UserAuth) -> ApiResult<PluginsAnswer> {
        let listing = state.supervisor.registry().listing();
        Ok(PluginsAnswer::Ok(Json(PluginList::from(&listing))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{PluginInfo as Info, Refused};

    /// The answer carries every field of the registry's listing.
    #[test]
    fn from_listing() {
        let listing = Listing {
            plugins: vec![Info {
                name: "koa".into(),
                version: "0.1.0".into(),
                frameworks: vec!["koa".into()],
                looks_for: "koa".into(),
                builtin: false,
                path: Some("/p/libkoa.so".into()),
            }],
            refused: vec![Refused {
                path: "/p/x.so".into(),
                reason: "it has no symbol".into(),
            }],
        };
        let list = PluginList::from(&listing);
        assert_eq!(list.plugins[0].path.as_deref(), Some("/p/libkoa.so"));
        assert!(!list.plugins[0].builtin);
        assert_eq!(list.refused[0].path, "/p/x.so");
        assert_eq!(list.refused[0].reason, "it has no symbol");
    }

    /// The operation is in the spec under its id, path and tag, with its schemas.
    #[test]
    fn in_the_spec() {
        let spec: serde_json::Value =
            serde_json::from_str(&poem_openapi::OpenApiService::new(PluginsApi, "t", "1").spec())
                .unwrap();
        let operation = &spec["paths"]["/api/v1/plugins"]["get"];
        assert_eq!(operation["operationId"], "listPlugins");
        assert_eq!(operation["tags"][0], "Meta");
        assert_eq!(
            operation["responses"]["200"]["description"],
            "The plugins in use and the refused libraries."
        );
        assert!(
            operation["security"][0]["UserAuth"].is_array(),
            "{operation:#}"
        );
        for schema in ["PluginList", "PluginInfo", "RefusedPlugin"] {
            assert!(
                spec["components"]["schemas"][schema].is_object(),
                "{schema}"
            );
        }
    }
}
