//! Every public address of a job, an image, a variant and a presigned
//! upload. The API answers with relative links (clients resolve them against
//! the address they called); events and notifications, read far from any
//! request, carry absolute ones built on `PUBLIC_BASE_URL`.

use uuid::Uuid;

/// Builds the links, relative or under one base address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// No trailing slash; empty for relative links.
    base: String,
}

impl Links {
    /// Links relative to the API's root (`/v1/jobs/…`).
    pub fn relative() -> Self {
        Self::default()
    }

    /// Links under `base` (`https://images.example.com/v1/jobs/…`).
    pub fn at(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned() }
    }

    /// A job.
    pub fn job(&self, id: Uuid) -> String {
        format!("{}/v1/jobs/{id}", self.base)
    }

    /// An image and its variants.
    pub fn image(&self, id: Uuid) -> String {
        format!("{}/v1/images/{id}", self.base)
    }

    /// One variant of an image, by preset.
    pub fn variant(&self, image_id: Uuid, preset: &str) -> String {
        format!("{}/v1/images/{image_id}/variants/{preset}", self.base)
    }

    /// A job's keyless status page (signed; see `status_url`).
    pub fn status(&self, job_id: Uuid) -> String {
        format!("{}/v1/status/{job_id}", self.base)
    }

    /// The API's own signed PUT for a presigned upload (objects on local disk).
    pub fn upload(&self, job_id: Uuid) -> String {
        format!("{}/v1/uploads/{job_id}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_or_under_one_base_without_a_doubled_slash() {
        let id = Uuid::nil();
        assert_eq!(Links::relative().job(id), format!("/v1/jobs/{id}"));
        assert_eq!(Links::at("https://img.example/").image(id), format!("https://img.example/v1/images/{id}"));
        assert_eq!(
            Links::at("https://img.example").variant(id, "thumb"),
            format!("https://img.example/v1/images/{id}/variants/thumb")
        );
        assert_eq!(Links::at("http://h:1").upload(id), format!("http://h:1/v1/uploads/{id}"));
    }
}
