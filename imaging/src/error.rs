//! The engine's errors and their stable codes.

/// Why the engine could not turn an input into variants.
///
/// Every variant is permanent for the input that caused it: trying the same
/// bytes again gives the same answer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ImagingError {
    /// The input has no bytes.
    #[error("the input is empty")]
    Empty,
    /// The bytes are not an image in a supported format.
    #[error("unsupported or unrecognised image format{}", .0.as_deref().map(|f| format!(": {f}")).unwrap_or_default())]
    UnsupportedFormat(Option<String>),
    /// The data stops before the image does.
    #[error("the image data is truncated")]
    Truncated,
    /// The data is damaged or not what its header claims.
    #[error("the image data is corrupt: {0}")]
    Corrupt(String),
    /// The image is larger than the configured limits.
    #[error("the image is too large: {0}")]
    TooLarge(String),
    /// The image is within the size limits but would cost too much to
    /// decode: a JPEG with more scans than [`crate::Limits::max_scans`].
    #[error("the image is too complex to decode: {0}")]
    TooComplex(String),
    /// The job ran past [`crate::Limits::deadline`]. Permanent like the rest:
    /// an input that needs more time than the budget will need it again.
    #[error("the image took longer than the {0:?} budget")]
    DeadlineExceeded(std::time::Duration),
    /// An encoder refused the pixels.
    #[error("encoding failed: {0}")]
    Encode(String),
    /// A decoder or encoder panicked; the panic was contained.
    #[error("the image engine panicked on this input")]
    Panicked,
}

impl ImagingError {
    /// The stable, kebab-case code that users and events see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty-input",
            Self::UnsupportedFormat(_) => "unsupported-format",
            Self::Truncated => "truncated-image",
            Self::Corrupt(_) => "corrupt-image",
            Self::TooLarge(_) => "image-too-large",
            Self::TooComplex(_) => "image-too-complex",
            Self::DeadlineExceeded(_) => "deadline-exceeded",
            Self::Encode(_) => "encode-failed",
            Self::Panicked => "engine-panic",
        }
    }
}

impl From<image::ImageError> for ImagingError {
    fn from(err: image::ImageError) -> Self {
        use image::ImageError as E;
        match err {
            E::Limits(e) => Self::TooLarge(e.to_string()),
            E::Unsupported(e) => Self::UnsupportedFormat(Some(e.to_string())),
            E::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Self::Truncated,
            E::Decoding(e) if e.to_string().to_ascii_lowercase().contains("eof") => Self::Truncated,
            other => Self::Corrupt(other.to_string()),
        }
    }
}
