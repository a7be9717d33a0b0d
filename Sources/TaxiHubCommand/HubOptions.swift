import ArgumentParser
import Configuration
import Foundation
import SystemPackage
import Web

/// The hub's settings, for every subcommand that touches the hub's state.
///
/// The settings are declared in `HubConfiguration`, not here: their flags are forwarded to
/// swift-configuration's `CommandLineArgumentsProvider` (its guide "Integrating with Swift
/// Argument Parser"), checked against those declarations, and listed by `--help`.
/// Settings come from, lowest to highest precedence: built-in defaults, the JSON config
/// file, `TAXI_HUB_*` environment variables, and flags.
struct HubOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: "JSON configuration file (default: config/taxi-hub.json when present).")
    var configFile: String?

    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp("The hub's settings as flags, listed here:", discussion: HubOptions.settingsHelp, valueName: "setting")
    )
    var settingArguments: [String] = []

    func validate() throws {
        _ = try Self.settingFlags(settingArguments)
    }

    /// The resolved configuration; an unusable setting is a usage error.
    func resolve() async throws -> HubConfiguration {
        do {
            return try await configuration(environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }

    /// The configuration these flags, `environment` and the config file give.
    func configuration(environment: [String: String]) async throws -> HubConfiguration {
        try HubConfiguration(reader: try await configReader(environment: environment))
    }

    /// Flags over `TAXI_HUB_*` environment variables over the config file over defaults in code.
    func configReader(environment: [String: String]) async throws -> ConfigReader {
        let path = configFile ?? "config/taxi-hub.json"
        guard configFile == nil || FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("Configuration file \(path) does not exist.")
        }
        let secrets = HubConfiguration.settings.filter(\.isSecret)
        return try HubConfiguration.reader(providers: [
            // The provider skips its first argument, the program's name.
            CommandLineArgumentsProvider(
                arguments: ["taxi-hub"] + (try Self.settingFlags(settingArguments)), secretsSpecifier: .specific(Set(secrets.compactMap(Self.flag(for:))))
            ),
            Self.environmentProvider(environment, secrets: Set(secrets.map(Self.environmentVariable(for:)))),
            try await FileProvider<JSONSnapshot>(filePath: FilePath(path), allowMissing: true),
        ])
    }

    /// `TAXI_HUB_` and the key in upper snake case (`TAXI_HUB_DATA_DIR`).
    static func environmentProvider(_ environment: [String: String], secrets: Set<String> = []) -> some ConfigProvider {
        EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(secrets)).prefixKeys(with: "taxiHub")
    }

    /// The flag a setting is given by (`--data-dir`), as `CommandLineArgumentsProvider` names it;
    /// nil for one only the environment or the file may give.
    static func flag(for setting: SettingDefinition) -> String? {
        setting.hasFlag ? flagName(of: setting) : nil
    }

    private static func flagName(of setting: SettingDefinition) -> String {
        encodedKey(of: setting, in: CommandLineArgumentsProvider(arguments: []))
    }

    /// The environment variable a setting is given by (`TAXI_HUB_DATA_DIR`).
    static func environmentVariable(for setting: SettingDefinition) -> String {
        encodedKey(of: setting, in: environmentProvider([:]))
    }

    private static func encodedKey(of setting: SettingDefinition, in provider: some ConfigProvider) -> String {
        (try? provider.value(forKey: AbsoluteConfigKey([setting.key]), type: .string).encodedKey) ?? setting.key
    }

    /// The setting flags as `CommandLineArgumentsProvider` gets them: each as `--name=value`
    /// (`--name` for an on/off one), once, the last one given winning as with any option.
    /// Refuses what the provider would misread or ignore: an unknown flag, a flag without its
    /// value, a value without a flag.
    static func settingFlags(_ arguments: [String]) throws -> [String] {
        let settings = Dictionary(
            HubConfiguration.settings.compactMap { setting in flag(for: setting).map { ($0, setting) } }, uniquingKeysWith: { first, _ in first }
        )
        var flags: [(name: String, argument: String)] = []
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            guard argument.hasPrefix("--") else {
                throw ValidationError(argument.hasPrefix("-") ? "Unknown option '\(argument)'." : "Unexpected argument '\(argument)'.")
            }
            let name = String(argument.prefix { $0 != "=" })
            guard let setting = settings[name] else {
                if let unflagged = HubConfiguration.settings.first(where: { flagName(of: $0) == name }) {
                    throw ValidationError(
                        "\(unflagged.key) has no flag: set \(environmentVariable(for: unflagged)) or \(unflagged.key) in the config file."
                    )
                }
                throw ValidationError("Unknown option '\(name)'. `taxi-hub serve --help` lists every setting.")
            }
            var given = argument
            if name == argument {
                if setting.isBool {
                    if let value = rest.first, ["true", "false"].contains(value) { given += "=" + rest.removeFirst() }
                } else {
                    guard let value = rest.first, !value.hasPrefix("--") else {
                        throw ValidationError("Missing value for '\(name) \(setting.placeholder)'.")
                    }
                    given += "=" + rest.removeFirst()
                }
            }
            flags.removeAll { $0.name == name }
            flags.append((name, given))
        }
        return flags.map(\.argument)
    }

    /// Every setting with its flag, variable, default and help, for `--help`.
    static let settingsHelp: String = {
        // ArgumentParser indents this by 8 and rewraps lines of 72 or more in 80 columns.
        let width = 70
        var lines = ["Each is also a TAXI_HUB_* variable and a key of the config file", "(docs/configuration.md)."]
        for group in [nil] + SettingGroup.allCases.map(Optional.some) {
            lines += ["", (group?.rawValue.capitalized ?? "General") + ":"]
            for setting in HubConfiguration.settings where setting.group == group {
                let variable = environmentVariable(for: setting)
                let name = flag(for: setting).map { [$0, setting.placeholder].filter { !$0.isEmpty }.joined(separator: " ") } ?? "\(variable) (no flag)"
                var facts = flag(for: setting) == nil ? [] : [variable]
                if let value = setting.defaultValue { facts.append("default: \(value.isEmpty ? "empty" : value)") }
                lines.append(name)
                lines += wrap(setting.help + (facts.isEmpty ? "" : " (\(facts.joined(separator: "; ")))"), width: width, indent: 4)
            }
        }
        return lines.joined(separator: "\n")
    }()

    /// `text` in lines of at most `width` characters (longer words stay whole), each indented.
    static func wrap(_ text: String, width: Int, indent: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, indent + line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines.map { String(repeating: " ", count: indent) + $0 }
    }
}
