//! The targets `generate` knows: which language/framework pairs exist, which are built, and
//! the rules of each template tree (files only for the webhook handler, files the user owns
//! after the first run, dependency files merged rather than replaced).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub language: &'static str,
    pub framework: &'static str,
    /// Folder under `templates/`.
    pub dir: &'static str,
    /// `false`: planned; asking for it fails plainly, never with a stub.
    pub built: bool,
    /// Paths (a trailing `/` for a folder, a `/` first to match anywhere below) generated only
    /// with `include_webhook_handler`.
    pub webhook_only: &'static [&'static str],
    /// Created once; after that the file is the app's and never touched again.
    pub user_owned: &'static [&'static str],
    /// Dependency and line files (`.gitignore`): an existing one gains the entries it lacks,
    /// nothing else.
    pub dependency_files: &'static [&'static str],
    /// Where the contract's migration files are written (the runtime's own, byte for byte).
    pub migrations_dir: &'static str,
}

pub const TARGETS: &[Target] = &[
    Target {
        language: "python",
        framework: "fastapi",
        dir: "python-fastapi",
        built: true,
        webhook_only: &["webhooks/", "tests/webhooks/"],
        user_owned: &[
            "main.py",
            "config/settings.py",
            ".env.example",
            "pyproject.toml",
        ],
        dependency_files: &[
            "requirements.txt",
            "requirements-dev.txt",
            ".gitignore",
            ".gitattributes",
        ],
        migrations_dir: "migrations",
    },
    Target {
        language: "node",
        framework: "express",
        dir: "node-express",
        built: true,
        webhook_only: &["webhooks/", "test/webhooks.test.js"],
        user_owned: &[
            "app.js",
            "server.js",
            "config/settings.js",
            ".env.example",
            "README.md",
            "tsconfig.json",
            ".prettierrc.json",
        ],
        dependency_files: &["package.json", ".gitignore", ".gitattributes"],
        migrations_dir: "migrations",
    },
    Target {
        language: "kotlin",
        framework: "spring",
        dir: "kotlin-spring",
        built: true,
        // The `webhooks` package, in main and in test, wherever the app's package puts it.
        webhook_only: &["/webhooks/"],
        user_owned: &[
            "/Application.kt",
            "src/main/resources/application.yml",
            ".env.example",
        ],
        dependency_files: &["pom.xml", ".gitignore", ".gitattributes"],
        migrations_dir: "src/main/resources/db/cafe24",
    },
];

impl Target {
    pub fn find(language: &str, framework: &str) -> Option<&'static Target> {
        TARGETS
            .iter()
            .find(|t| t.language == language && t.framework == framework)
    }

    /// `python/fastapi, node/express (not built yet), …` for error messages.
    pub fn supported_pairs() -> String {
        TARGETS
            .iter()
            .map(|t| {
                if t.built {
                    format!("{}/{}", t.language, t.framework)
                } else {
                    format!("{}/{} (not built yet)", t.language, t.framework)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn matches(rules: &[&str], path: &str) -> bool {
        rules
            .iter()
            .any(|r| match (r.strip_prefix('/'), r.strip_suffix('/')) {
                // `/webhooks/`: a folder of that name anywhere (Kotlin packages nest it deep).
                (Some(anywhere), _) => format!("/{path}").contains(&format!("/{anywhere}")),
                (None, Some(dir)) => path.starts_with(&format!("{dir}/")),
                (None, None) => path == *r,
            })
    }

    pub fn is_webhook_only(&self, path: &str) -> bool {
        Self::matches(self.webhook_only, path)
    }

    pub fn is_user_owned(&self, path: &str) -> bool {
        Self::matches(self.user_owned, path)
    }

    pub fn is_dependency_file(&self, path: &str) -> bool {
        Self::matches(self.dependency_files, path)
    }
}
