import Configuration
import Foundation
import Logging

/// Settings that belong together. Each group is read through a reader scoped to it
/// (`cluster.natsUrl`); outside the code a group adds nothing to a name: the flag stays
/// `--nats-url`, the variable `TAXI_HUB_NATS_URL`, the file key `natsUrl`.
public enum SettingGroup: String, Sendable, CaseIterable {
    case store, cluster, limits

    /// `key` without its group: the name providers know.
    static func unscoped(_ key: AbsoluteConfigKey) -> AbsoluteConfigKey {
        guard key.components.count == 2, SettingGroup(rawValue: key.components[0]) != nil else { return key }
        return AbsoluteConfigKey([key.components[1]], context: key.context)
    }
}

/// What one setting is: everything but its value. `--help`, the docs' tests and the
/// providers' checks read it from `HubConfiguration.settings`.
public struct SettingDefinition: Sendable {
    /// The setting's name: the key in the config file. The flag (`--data-dir`) and the
    /// environment variable (`TAXI_HUB_DATA_DIR`) are this name in kebab and snake case.
    public let key: String
    public let group: SettingGroup?
    /// One or two sentences for `--help`.
    public let help: String
    /// Read as a secret (redacted from swift-configuration's access logs).
    public let isSecret: Bool
    /// False for a setting only the environment or the file may give (secrets stay out of
    /// the process list).
    public let hasFlag: Bool
    /// A flag without a value sets it (`--bench-routes`).
    public let isBool: Bool
    /// `<int>`, `<seconds>`, ... in `--help`.
    public let placeholder: String
    /// The default as help and the docs show it; nil when unset by default.
    public let defaultValue: String?
    /// What a value must be, for messages: "a whole number".
    let expected: String
    /// Types a provider may hold the value as.
    let configTypes: [ConfigType]
    /// An empty string means "unset" (optional settings, but the JWT secret).
    let emptyIsUnset: Bool

    /// Why `provider` holds a value for this setting that cannot be read as its type, or
    /// nil when it holds none or a usable one.
    func problem(in provider: some ConfigProvider) -> String? {
        let key = AbsoluteConfigKey([key])
        var failure: (any Error)?
        for type in configTypes {
            do {
                _ = try provider.value(forKey: key, type: type)
                return nil
            } catch {
                failure = error
            }
        }
        let given = try? provider.value(forKey: key, type: .string)
        if case .string("")? = given?.value?.content, emptyIsUnset { return nil }
        // A flag or a variable names itself; a file key needs its file's provider.
        let source = given.map { $0.encodedKey == self.key ? "\(self.key) in \(provider.providerName)" : $0.encodedKey } ?? provider.providerName
        let shown: String =
            switch given?.value?.content {
            case .string(let text)?: isSecret ? "a secret" : "\"\(text)\""
            default: "\(failure.map { "\($0)" } ?? "the value given")"
            }
        return "\(self.key) must be \(expected), not \(shown) (\(source))."
    }
}

/// A value a setting can hold: how providers give it and how `--help` shows it.
public protocol SettingValue: Sendable {
    /// `<int>`, `<seconds>`, ...
    static var placeholder: String { get }
    /// "a whole number", "a number of seconds", ...
    static var expected: String { get }
    /// The types a provider may hold it as, tried in order.
    static var configTypes: [ConfigType] { get }
    /// The value at `key`, or nil when no provider has one; throws when it has an unusable one.
    static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> Self?
    /// The value as help, the docs and messages show it.
    var settingDescription: String { get }
    /// What a number of it counts (" seconds"), for messages; empty when plain.
    static var unit: String { get }
}

/// A value a provider gave that its setting cannot hold; `shown` is how messages quote it.
public struct UnusableSettingValue: Error {
    public let shown: String
}

extension SettingValue {
    public static var configTypes: [ConfigType] { [.string] }
    public static var unit: String { "" }
}

extension String: SettingValue {
    public static var placeholder: String { "<string>" }
    public static var expected: String { "text" }
    public static var configTypes: [ConfigType] { [.string, .stringArray] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) -> String? {
        // The flags' provider splits a value at its commas (`postgres://h1,h2/db`); a flag
        // holds one argument (`HubOptions.settingFlags`), which the join restores.
        reader.string(forKey: key, isSecret: definition.isSecret)
            ?? reader.stringArray(forKey: key, isSecret: definition.isSecret)?.joined(separator: ",")
    }
    public var settingDescription: String { self }
}

extension Int: SettingValue {
    public static var placeholder: String { "<int>" }
    public static var expected: String { "a whole number" }
    public static var configTypes: [ConfigType] { [.int] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) -> Int? {
        reader.int(forKey: key, isSecret: definition.isSecret)
    }
    public var settingDescription: String { String(self) }
}

extension UInt8: SettingValue {
    public static var placeholder: String { "<int>" }
    public static var expected: String { "a whole number from 0 to 255" }
    public static var configTypes: [ConfigType] { [.int] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> UInt8? {
        guard let value = reader.int(forKey: key, isSecret: definition.isSecret) else { return nil }
        guard let byte = UInt8(exactly: value) else { throw UnusableSettingValue(shown: String(value)) }
        return byte
    }
    public var settingDescription: String { String(self) }
}

extension Double: SettingValue {
    public static var placeholder: String { "<number>" }
    public static var expected: String { "a finite number" }
    public static var configTypes: [ConfigType] { [.double] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> Double? {
        guard let value = reader.double(forKey: key, isSecret: definition.isSecret) else { return nil }
        guard value.isFinite else { throw UnusableSettingValue(shown: String(value)) }
        return value
    }
    /// `1000`, not `1000.0`.
    public var settingDescription: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}

extension Bool: SettingValue {
    public static var placeholder: String { "" }
    public static var expected: String { "true or false" }
    public static var configTypes: [ConfigType] { [.bool] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) -> Bool? {
        reader.bool(forKey: key, isSecret: definition.isSecret)
    }
    public var settingDescription: String { String(self) }
}

/// Given in seconds, fractions allowed, kept to the millisecond.
extension Duration: SettingValue {
    public static var placeholder: String { "<seconds>" }
    public static var expected: String { "a number of seconds" }
    public static var unit: String { " seconds" }
    public static var configTypes: [ConfigType] { [.double] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> Duration? {
        guard let seconds = reader.double(forKey: key, isSecret: definition.isSecret) else { return nil }
        guard seconds.isFinite, abs(seconds) < 1e12 else { throw UnusableSettingValue(shown: String(seconds)) }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
    public var settingDescription: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return (Double(milliseconds) / 1000).settingDescription
    }
}

extension Logger.Level: SettingValue {
    public static var placeholder: String { "<level>" }
    public static var expected: String { "one of \(allCases.map(\.rawValue).joined(separator: ", "))" }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> Logger.Level? {
        guard let name = reader.string(forKey: key, isSecret: definition.isSecret) else { return nil }
        guard let level = Logger.Level(rawValue: name) else { throw UnusableSettingValue(shown: name) }
        return level
    }
    public var settingDescription: String { rawValue }
}

/// A comma-separated list: `a,b` as a flag, variable or file string, or a JSON array.
extension Array: SettingValue where Element == String {
    public static var placeholder: String { "<list>" }
    public static var expected: String { "a comma-separated list" }
    public static var configTypes: [ConfigType] { [.string, .stringArray] }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) -> [String]? {
        // A flag's provider splits `a,b` into two values, which no longer read as one string.
        let parts = reader.string(forKey: key, isSecret: definition.isSecret).map { [$0] }
            ?? reader.stringArray(forKey: key, isSecret: definition.isSecret)
        return parts?.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    public var settingDescription: String { joined(separator: ",") }
}

/// Unset by default; an empty value unsets it too (unless the setting says otherwise).
extension Optional: SettingValue where Wrapped: SettingValue {
    public static var placeholder: String { Wrapped.placeholder }
    public static var expected: String { Wrapped.expected }
    public static var configTypes: [ConfigType] { Wrapped.configTypes }
    public static func read(from reader: ConfigReader, key: ConfigKey, definition: SettingDefinition) throws(UnusableSettingValue) -> Wrapped?? {
        if definition.emptyIsUnset, reader.string(forKey: key, isSecret: definition.isSecret) == "" { return .some(nil) }
        return try Wrapped.read(from: reader, key: key, definition: definition).map { .some($0) }
    }
    public var settingDescription: String { map(\.settingDescription) ?? "" }
}

/// A requirement on a setting's value beyond its type, with the words that state it.
public struct SettingCheck<Value: SettingValue>: Sendable {
    /// "must be from 4 to 31": what a message says the value must be.
    public let requirement: String
    public let isValid: @Sendable (Value) -> Bool

    public init(_ requirement: String, _ isValid: @escaping @Sendable (Value) -> Bool) {
        self.requirement = requirement
        self.isValid = isValid
    }

    /// Any value of the type.
    public static var any: Self { Self("may be anything") { _ in true } }

    /// The check applied only when the setting is set.
    public static func ifSet<Wrapped>(_ check: SettingCheck<Wrapped>) -> Self where Value == Wrapped? {
        Self(check.requirement) { $0.map(check.isValid) ?? true }
    }
}

extension SettingCheck where Value: Comparable {
    public static func within(_ range: ClosedRange<Value>) -> Self {
        Self("must be from \(range.lowerBound.settingDescription) to \(range.upperBound.settingDescription)\(Value.unit)") { range.contains($0) }
    }
}

extension SettingCheck where Value: Comparable & AdditiveArithmetic {
    public static var positive: Self { Self("must be positive") { $0 > .zero } }
}

/// One setting of the hub, declared once, at its property in `HubConfiguration`: its name
/// (file key, flag and environment variable), group, help, check and default.
///
/// Made inside `HubConfiguration(reader:)` it takes its value from that reader; made anywhere
/// else (`HubConfiguration()`) it keeps its default.
@propertyWrapper
public struct Setting<Value: SettingValue>: Sendable {
    public var wrappedValue: Value
    public let definition: SettingDefinition
    /// Why the value read is unusable; nil for a usable or default one.
    let problem: String?

    /// `secret`: redacted from access logs and messages. `flag: false`: only the environment or
    /// the file may give it. `emptyIsUnset: false`: an optional setting given empty keeps "".
    public init(
        wrappedValue: Value, _ key: String, in group: SettingGroup? = nil, secret: Bool = false, flag: Bool = true,
        emptyIsUnset: Bool = true, help: String, check: SettingCheck<Value> = .any
    ) {
        let isOptional = Value.self is any ExpressibleByNilLiteral.Type
        let defaultValue = wrappedValue.settingDescription
        definition = SettingDefinition(
            key: key, group: group, help: help, isSecret: secret, hasFlag: flag, isBool: Value.self == Bool.self,
            placeholder: Value.placeholder, defaultValue: isOptional && defaultValue.isEmpty ? nil : defaultValue,
            expected: Value.expected, configTypes: Value.configTypes, emptyIsUnset: isOptional && emptyIsUnset
        )
        self.wrappedValue = wrappedValue
        guard let reader = SettingSource.reader else {
            problem = nil
            return
        }
        let scoped = group.map { reader.scoped(to: ConfigKey($0.rawValue)) } ?? reader
        do throws(UnusableSettingValue) {
            if let value = try Value.read(from: scoped, key: ConfigKey(key), definition: definition) {
                self.wrappedValue = value
                problem = check.isValid(value) ? nil : "\(key) \(check.requirement), not \(secret ? "the secret given" : value.settingDescription)."
            } else {
                problem = nil
            }
        } catch {
            problem = "\(key) must be \(Value.expected), not \(error.shown)."
        }
    }
}

/// The reader `Setting`s read from while `HubConfiguration(reader:)` builds one.
enum SettingSource {
    @TaskLocal static var reader: ConfigReader?
}

/// What `HubConfiguration` learns of its settings by reflection.
protocol SettingReflection {
    var definition: SettingDefinition { get }
    var problem: String? { get }
    /// The value as help shows it.
    var shownValue: String { get }
}

extension Setting: SettingReflection {
    var shownValue: String { wrappedValue.settingDescription }
}

extension HubConfiguration {
    /// Every setting, in the order `HubConfiguration` declares them.
    public static let settings: [SettingDefinition] = HubConfiguration().reflectedSettings.map(\.definition)

    var reflectedSettings: [any SettingReflection] {
        Mirror(reflecting: self).children.compactMap { $0.value as? any SettingReflection }
    }

    /// A reader over `providers`, highest precedence first, for `init(reader:)`: keys drop
    /// their group on the way to a provider. Throws when a provider holds a value a setting
    /// cannot read as its type (`--port abc`), naming the setting and where the value came from.
    public static func reader(providers: [any ConfigProvider]) throws -> ConfigReader {
        for provider in providers {
            for setting in settings {
                if let problem = setting.problem(in: provider) { throw ConfigurationError(problem) }
            }
        }
        func unscoped(_ provider: some ConfigProvider) -> any ConfigProvider { provider.mapKeys(SettingGroup.unscoped) }
        return ConfigReader(providers: providers.map { unscoped($0) })
    }
}
