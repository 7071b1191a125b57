import Compiler
import Foundation
import GraphIR

let path = CommandLine.arguments[1]
let text = try String(contentsOfFile: path, encoding: .utf8)
do {
    var r = try Frontend.lower(path: path, text: text)
    print(Printer().print(r.graph))
    try PassPipeline.standard.run(&r.graph) { name, g in if CommandLine.arguments.count > 2 { print("// after \(name)"); print(Printer().print(g)) } }
    print(Printer().print(r.graph))
} catch let e as CompileError {
    FileHandle.standardError.write(e.rendered.data(using: .utf8)!)
    exit(1)
}
