//! Generations: a project's files, uploaded as JSON or as an archive, listed, read and deleted.
//! An upload is checked whole and written into a staging folder first; only a complete, valid
//! upload is moved into place and recorded, so a refused one leaves nothing behind.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::Example;
use poem_openapi::{ApiRequest, ApiResponse, Enum, Object, OpenApi};
use previewd_plugin_api::Project;

use super::error::{ApiError, ApiResult};
use super::security::UserAuth;
use super::{examples, ApiTags};
use crate::state::AppState;
use crate::store::GenerationRecord;
use crate::upload::{self, ArchiveKind, Encoding, UploadFile, UploadSummary};

/// Longest generation name.
const MAX_NAME_CHARS: usize = 200;

/// An uploaded project.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Generation {
    /// The generation's id (a UUID), the `generation_id` of every path under it.
    pub id: String,
    /// The name given at upload.
    pub name: String,
    /// The plugin that recognised the project (`fastapi`, ...), or null when none did.
    #[oai(nullable)]
    pub framework: Option<String>,
    /// Why that plugin recognised it, or null when none did.
    #[oai(nullable)]
    pub detection_reason: Option<String>,
    /// Number of files.
    pub file_count: u64,
    /// Total size of the files, in bytes.
    pub total_bytes: u64,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

impl Example for Generation {
    fn example() -> Generation {
        Generation {
            id: examples::GENERATION_ID.into(),
            name: "todo-api".into(),
            framework: Some("fastapi".into()),
            detection_reason: Some(
                "main.py creates `app = FastAPI()`; requirements.txt lists fastapi".into(),
            ),
            file_count: 3,
            total_bytes: 2_417,
            created_at: examples::at(examples::UPLOADED_AT),
        }
    }
}

impl From<GenerationRecord> for Generation {
    fn from(r: GenerationRecord) -> Generation {
        Generation {
            id: r.id,
            name: r.name,
            framework: r.framework,
            detection_reason: r.detection_reason,
            file_count: r.file_count,
            total_bytes: r.total_bytes,
            created_at: r.created_at,
        }
    }
}

/// How a file's content is encoded.
#[derive(Debug, Clone, Copy, Default, Enum)]
#[oai(rename_all = "lowercase")]
pub enum FileEncoding {
    /// The content is the text itself.
    #[default]
    Utf8,
    /// The content is base64 (for binary files).
    Base64,
}

/// One file of a JSON upload.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewFile {
    /// Path inside the project, with `/` separators; no `..`, not absolute.
    pub path: String,
    /// The file's content.
    pub content: String,
    /// `utf8` (default) or `base64`.
    #[oai(default)]
    pub encoding: FileEncoding,
}

impl Example for NewFile {
    fn example() -> NewFile {
        NewFile {
            path: "requirements.txt".into(),
            content: "fastapi\nuvicorn\n".into(),
            encoding: FileEncoding::Utf8,
        }
    }
}

/// A JSON upload.
#[derive(Debug, Object)]
#[oai(example)]
pub struct NewGeneration {
    /// A name for the project.
    pub name: String,
    /// The project's files.
    pub files: Vec<NewFile>,
}

impl Example for NewGeneration {
    /// A complete FastAPI project, so that the example uploads a project previewd can launch.
    fn example() -> NewGeneration {
        NewGeneration {
            name: "todo-api".into(),
            files: vec![
                NewFile {
                    path: "main.py".into(),
                    content: "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n\
                              @app.get(\"/items/{item_id}\")\n\
                              def read_item(item_id: int):\n    \
                              return {\"item_id\": item_id}\n"
                        .into(),
                    encoding: FileEncoding::Utf8,
                },
                NewFile::example(),
                NewFile {
                    path: "static/favicon.ico".into(),
                    content: "AAABAAEAAQEAAAEAGAAwAAAAFgAAACgAAAABAAAAAgAAAAEAGAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAD/AAAAAAA=".into(),
                    encoding: FileEncoding::Base64,
                },
            ],
        }
    }
}

/// An archive upload.
#[derive(ApiRequest)]
pub enum ArchiveUpload {
    /// A gzip-compressed tar archive.
    #[oai(content_type = "application/gzip")]
    TarGz(Binary<poem::Body>),
    /// A zip archive.
    #[oai(content_type = "application/zip")]
    Zip(Binary<poem::Body>),
    /// Either, recognised by its first bytes.
    #[oai(content_type = "application/octet-stream")]
    Other(Binary<poem::Body>),
}

#[derive(ApiResponse)]
pub enum Created {
    /// The generation was stored.
    #[oai(status = 201)]
    Created(Json<Generation>),
}

#[derive(ApiResponse)]
pub enum GenerationList {
    /// The caller's generations, oldest first.
    #[oai(status = 200)]
    Ok(Json<Vec<Generation>>),
}

#[derive(ApiResponse)]
pub enum GenerationFound {
    /// The generation.
    #[oai(status = 200)]
    Ok(Json<Generation>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// The generation, its preview, files and logs are gone.
    #[oai(status = 204)]
    Deleted,
}

/// Generations operations.
pub struct GenerationsApi;

#[OpenApi(prefix_path = "/api/v1/generations", tag = "ApiTags::Generations")]
impl GenerationsApi {
    /// Upload a project as JSON
    ///
    /// Stores the files and detects the framework. Every path and limit is checked before a
    /// byte is written; a refused upload writes nothing and names the rule it broke.
    #[oai(path = "/", method = "post", operation_id = "createGeneration")]
    async fn create(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        body: Json<NewGeneration>,
    ) -> ApiResult<Created> {
        let NewGeneration { name, files } = body.0;
        let files: Vec<UploadFile> = files
            .into_iter()
            .map(|f| UploadFile {
                path: f.path,
                content: f.content,
                encoding: match f.encoding {
                    FileEncoding::Utf8 => Encoding::Utf8,
                    FileEncoding::Base64 => Encoding::Base64,
                },
            })
            .collect();
        let limits = state.config.upload_limits();
        store_upload(&state, auth.0, name, move |dest| {
            upload::write_files(&files, &dest, &limits)
        })
        .await
    }

    /// Upload a project as an archive
    ///
    /// The body is a `.tar.gz` or a `.zip`. When every entry sits in one top-level folder (as in
    /// archives downloaded from a code host) that folder is dropped. Links, devices, `..` and
    /// absolute paths are refused, and size limits apply while decompressing, so a bomb stops
    /// early. The name is taken from `?name=`, else "upload".
    #[oai(
        path = "/archive",
        method = "post",
        operation_id = "uploadGenerationArchive"
    )]
    async fn upload_archive(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// A name for the project.
        #[oai(example = "example_name")]
        name: poem_openapi::param::Query<Option<String>>,
        body: ArchiveUpload,
    ) -> ApiResult<Created> {
        let (declared, body) = match body {
            ArchiveUpload::TarGz(b) => (Some("application/gzip"), b.0),
            ArchiveUpload::Zip(b) => (Some("application/zip"), b.0),
            ArchiveUpload::Other(b) => (None, b.0),
        };
        let max = state.config.max_total_bytes.saturating_add(1024 * 1024);
        let bytes = read_limited(body, max).await?;
        let kind = ArchiveKind::sniff(declared, &bytes[..bytes.len().min(8)]).ok_or_else(|| {
            ApiError::new(
                400,
                "unsupported_archive",
                "the body is neither a .tar.gz nor a .zip archive",
            )
        })?;
        let limits = state.config.upload_limits();
        let name = name.0.unwrap_or_else(|| "upload".to_string());
        store_upload(&state, auth.0, name, move |dest| {
            upload::extract_archive(&bytes, kind, &dest, &limits)
        })
        .await
    }

    /// List your generations
    ///
    /// Oldest first.
    #[oai(path = "/", method = "get", operation_id = "listGenerations")]
    async fn list(&self, state: Data<&Arc<AppState>>, auth: UserAuth) -> ApiResult<GenerationList> {
        let list = state.store.generations_of(&auth.0)?;
        Ok(GenerationList::Ok(Json(
            list.into_iter().map(Generation::from).collect(),
        )))
    }

    /// Get a generation
    ///
    /// The generation's name, size and detected framework. Another user's generation is a 404,
    /// exactly as if it did not exist.
    #[oai(
        path = "/:generation_id",
        method = "get",
        operation_id = "getGeneration"
    )]
    async fn get(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<GenerationFound> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        Ok(GenerationFound::Ok(Json(generation.into())))
    }

    /// Delete a generation
    ///
    /// Stops its preview if one runs, then deletes its files, its logs and its records.
    #[oai(
        path = "/:generation_id",
        method = "delete",
        operation_id = "deleteGeneration"
    )]
    async fn delete(
        &self,
        state: Data<&Arc<AppState>>,
        auth: UserAuth,
        /// The generation's id.
        #[oai(example = "examples::generation_id")]
        generation_id: Path<String>,
    ) -> ApiResult<Deleted> {
        let generation = owned_generation(&state, &auth.0, &generation_id.0)?;
        if let Some(preview) = state.store.latest_preview(&generation.id)? {
            state
                .supervisor
                .stop(&preview.id, "its generation was deleted")
                .await;
        }
        let files = state.supervisor.project_dir(&generation.id);
        let previews: Vec<String> = state
            .store
            .previews_where(|p| p.generation_id == generation.id)?
            .into_iter()
            .map(|p| p.id)
            .collect();
        if let Err(err) = state
            .supervisor
            .databases()
            .drop_generation(&generation.id)
            .await
        {
            tracing::warn!("generation {}: dropping its database: {err}", generation.id);
        }
        state.store.delete_generation(&generation.id).await?;
        state.logs.delete(&generation.id)?;
        state.cache_static_routes(&generation.id, None);
        let previews_dir = state.config.data_dir.join("previews");
        tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_dir_all(files);
            for id in previews {
                let _ = std::fs::remove_dir_all(previews_dir.join(id));
            }
        })
        .await
        .map_err(|err| ApiError::internal("deleting files", err))?;
        Ok(Deleted::Deleted)
    }
}

fn example_name() -> Option<String> {
    Some("todo-api".into())
}

/// Writes an upload into staging with `write`, detects its framework, moves it into place and
/// records it.
async fn store_upload(
    state: &Arc<AppState>,
    owner: String,
    name: String,
    write: impl FnOnce(PathBuf) -> Result<UploadSummary, upload::UploadError> + Send + 'static,
) -> ApiResult<Created> {
    let name = name.trim().to_string();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(ApiError::new(
            400,
            "invalid_name",
            format!("the name must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    let state = state.clone();
    let id = uuid::Uuid::now_v7().to_string();
    let staging = state.staging_dir.join(&id);
    let final_dir = state.supervisor.project_dir(&id);
    let registry = state.supervisor.registry().clone();
    let (summary, detection) = tokio::task::spawn_blocking(move || {
        let summary = write(staging.clone())
            .map_err(|err| ApiError::new(err.http_status(), err.code(), err.to_string()))?;
        let detection = Project::open(&staging)
            .ok()
            .and_then(|project| registry.detect(&project))
            .map(|(plugin, detection)| (plugin.name().to_string(), detection.reason));
        std::fs::rename(&staging, &final_dir).map_err(|err| {
            let _ = std::fs::remove_dir_all(&staging);
            ApiError::internal("moving the upload into place", err)
        })?;
        Ok::<_, ApiError>((summary, detection))
    })
    .await
    .map_err(|err| ApiError::internal("storing the upload", err))??;
    let (framework, detection_reason) = detection.unzip();
    let record = GenerationRecord {
        id,
        owner,
        name,
        framework,
        detection_reason,
        file_count: summary.file_count as u64,
        total_bytes: summary.total_bytes,
        created_at: Utc::now(),
    };
    state.store.put_generation(&record).await?;
    tracing::info!(generation = %record.id, owner = %record.owner, files = record.file_count, framework = ?record.framework, "generation stored");
    Ok(Created::Created(Json(record.into())))
}

/// The generation `id` if `user` owns it; otherwise 404, exactly as if it did not exist.
pub fn owned_generation(state: &AppState, user: &str, id: &str) -> ApiResult<GenerationRecord> {
    match state.store.generation(id)? {
        Some(generation) if generation.owner == user => Ok(generation),
        _ => Err(ApiError::generation_not_found(id)),
    }
}

/// Reads a request body, refusing it once it passes `max` bytes.
async fn read_limited(body: poem::Body, max: u64) -> ApiResult<Vec<u8>> {
    let mut stream = body.into_bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.try_next().await.map_err(|err| {
        ApiError::new(
            400,
            "unreadable_body",
            format!("reading the body failed: {err}"),
        )
    })? {
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(ApiError::new(
                413,
                "upload_too_large",
                format!("the archive is larger than {max} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
