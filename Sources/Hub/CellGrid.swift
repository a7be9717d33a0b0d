import Foundation

/// One cell of a `CellGrid`: a latitude band, counted northwards from 0 at the south pole, and a
/// column of that band, counted eastwards from 0 at longitude −180°.
public struct CellID: Sendable, Hashable {
    public let band: Int32
    public let column: Int32

    public init(band: Int32, column: Int32) {
        self.band = band
        self.column = column
    }
}

/// Near-square cells about `cellSize` metres on a side, everywhere on the earth.
///
/// The sphere is cut into latitude bands of equal height: the whole number of bands from pole to
/// pole that brings their height closest to `cellSize`. Each band is cut into equal columns, as
/// many as fit `cellSize` wide into its circumference at its middle latitude, and at least one.
/// Away from the poles a cell is therefore square to within a fraction of a percent (for
/// 1,000 m cells); towards a pole the columns get fewer, and the band touching a pole has three
/// wedge-shaped cells. Longitudes wrap: 180° and −180° are the same meridian, in column 0.
public struct CellGrid: Sendable {
    /// The side of a cell in metres, as asked for.
    public let cellSize: Double
    /// How many latitude bands there are from the south pole to the north pole.
    public let bandCount: Int32
    /// The height of every band, in radians of latitude.
    private let bandHeight: Double

    /// A grid of cells about `cellSize` metres (at least 1) on a side.
    public init(cellSize: Double = 1_000) {
        precondition(cellSize.isFinite && cellSize >= 1, "A cell must be at least 1 m on a side.")
        self.cellSize = cellSize
        let bands = max(1, (Double.pi * GeoPoint.earthRadius / cellSize).rounded())
        bandCount = Int32(bands)
        bandHeight = Double.pi / bands
    }

    /// How many columns `band` is cut into.
    public func columnCount(inBand band: Int32) -> Int32 {
        let middleLatitude = -Double.pi / 2 + (Double(band) + 0.5) * bandHeight
        let circumference = 2 * Double.pi * GeoPoint.earthRadius * cos(middleLatitude)
        return Int32(max(1, (circumference / cellSize).rounded(.down)))
    }

    /// The latitudes, in degrees, from the southern to the northern edge of `band`.
    public func latitudes(ofBand band: Int32) -> ClosedRange<Double> {
        let south = -Double.pi / 2 + Double(band) * bandHeight
        let north = south + bandHeight
        return south / Self.radiansPerDegree...north / Self.radiansPerDegree
    }

    /// The longitudes, in degrees, from the western to the eastern edge of `cell`.
    public func longitudes(of cell: CellID) -> ClosedRange<Double> {
        let width = 360 / Double(columnCount(inBand: cell.band))
        let west = -180 + Double(cell.column) * width
        return west...west + width
    }

    /// The cell that `point` (which must be valid) lies in.
    public func cell(containing point: GeoPoint) -> CellID {
        precondition(point.isValid, "Not a position on the earth: \(point)")
        let band = band(atLatitude: point.lat * Self.radiansPerDegree)
        let columns = columnCount(inBand: band)
        return CellID(band: band, column: Self.wrap(Self.column(atLongitude: point.lng, columns: columns), columns))
    }

    /// Every cell that may hold a point within `radius` metres of `center` (which must be valid),
    /// without duplicates: band by band from the south, each band's cells from west to east.
    /// Some of them may hold no such point; no cell that does is left out.
    public func cells(coveringCircleOf radius: Double, around center: GeoPoint) -> [CellID] {
        var cells: [CellID] = []
        cover(ofCircle: radius, around: center).forEachCell(notIn: nil) { cells.append($0) }
        return cells
    }

    /// The cells that may hold a point within `radius` metres of `center`, band by band.
    ///
    /// The circle's angle is padded by a few micrometres, more than any rounding in this file or in
    /// `GeoPoint.distance`, so a point that distance puts within `radius` is never left out.
    /// Each band spans the longitudes of the whole circle, `asin(sin(angle) / cos(latitude))` on
    /// either side of the centre, or all longitudes when the circle reaches a pole. For a larger
    /// radius around the same centre, each band's columns include those of the smaller one.
    @usableFromInline
    func cover(ofCircle radius: Double, around center: GeoPoint) -> CircleCover {
        precondition(center.isValid, "Not a position on the earth: \(center)")
        let angle = max(0, radius) / GeoPoint.earthRadius * (1 + 1e-9) + 1e-12
        let latitude = center.lat * Self.radiansPerDegree
        let southBand = band(atLatitude: latitude - angle)
        let northBand = band(atLatitude: latitude + angle)
        let sineRatio = sin(angle) / cos(latitude)
        let reachesPole = angle >= Double.pi / 2 - abs(latitude) || !(sineRatio < 1)
        // Degrees of longitude on either side of the centre; 180 takes in every longitude.
        let halfWidth = reachesPole ? 180 : asin(sineRatio) / Self.radiansPerDegree

        var spans: [CircleCover.BandSpan] = []
        spans.reserveCapacity(Int(northBand - southBand) + 1)
        for band in southBand...northBand {
            let columns = columnCount(inBand: band)
            let west = Self.column(atLongitude: center.lng - halfWidth, columns: columns)
            let east = Self.column(atLongitude: center.lng + halfWidth, columns: columns)
            let isFull = east - west + 1 >= Int(columns)
            spans.append(.init(band: band, columnCount: columns, columns: isFull ? 0...Int(columns) - 1 : west...east))
        }
        return CircleCover(spans: spans)
    }

    private static let radiansPerDegree = Double.pi / 180

    /// The band of a latitude in radians; latitudes beyond a pole count as that pole's band.
    private func band(atLatitude latitude: Double) -> Int32 {
        let band = ((latitude + Double.pi / 2) / bandHeight).rounded(.down)
        return Int32(min(max(band, 0), Double(bandCount - 1)))
    }

    /// The column of a longitude in degrees, counted from −180° without wrapping: a longitude
    /// east of 180° (or at it) gives `columns` or more, one west of −180° a negative column.
    private static func column(atLongitude longitude: Double, columns: Int32) -> Int {
        Int(((longitude + 180) / 360 * Double(columns)).rounded(.down))
    }

    /// `column` brought into `0..<columns`.
    static func wrap(_ column: Int, _ columns: Int32) -> Int32 {
        let count = Int(columns)
        return Int32((column % count + count) % count)
    }
}

/// The cells a circle may reach, as one run of columns per latitude band.
@usableFromInline
struct CircleCover {
    /// The columns a circle may reach in one band.
    struct BandSpan {
        let band: Int32
        let columnCount: Int32
        /// Counted from column 0 without wrapping (so possibly below 0 or from `columnCount` on),
        /// never more than `columnCount` of them; all the band's columns are `0...columnCount - 1`.
        let columns: ClosedRange<Int>

        var isFull: Bool { columns.count >= Int(columnCount) }
    }

    /// Consecutive bands, from the south.
    let spans: [BandSpan]

    /// Calls `body` with each cell of this cover that is not in `smaller`, a cover of a smaller
    /// (or equal) circle around the same centre, or with every cell when `smaller` is nil.
    @usableFromInline
    func forEachCell(notIn smaller: CircleCover?, _ body: (CellID) -> Void) {
        let smallerSpans = smaller?.spans ?? []
        let firstSmallerBand = smallerSpans.first.map { Int($0.band) } ?? 0
        for span in spans {
            let index = Int(span.band) - firstSmallerBand
            guard smallerSpans.indices.contains(index) else {
                visit(span.columns, of: span, body)
                continue
            }
            let old = smallerSpans[index].columns
            if smallerSpans[index].isFull { continue }
            if span.isFull {
                visit(old.upperBound + 1...old.lowerBound - 1 + Int(span.columnCount), of: span, body)
            } else {
                visit(span.columns.lowerBound..<old.lowerBound, of: span, body)
                visit(old.upperBound + 1..<span.columns.upperBound + 1, of: span, body)
            }
        }
    }

    private func visit(_ columns: some Sequence<Int>, of span: BandSpan, _ body: (CellID) -> Void) {
        for column in columns {
            body(CellID(band: span.band, column: CellGrid.wrap(column, span.columnCount)))
        }
    }
}
