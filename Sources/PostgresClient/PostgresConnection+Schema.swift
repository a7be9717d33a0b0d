extension PostgresConnection {
    /// `url` with `schema` as its connections' `search_path` and `application_name`, so that they
    /// work in that schema alone and can be found by it (tests and simulation runs each take a
    /// schema of their own on one server). Works for URIs and `key=value` strings.
    public static func schemaURL(_ url: String, schema: String) -> String {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            return url + " options='-csearch_path=\(schema)' application_name=\(schema)"
        }
        // libpq takes one `=` per query parameter: the one inside the option is escaped.
        let separator = url.contains("?") ? "&" : "?"
        return url + separator + "options=-csearch_path%3D\(schema)&application_name=\(schema)"
    }
}
