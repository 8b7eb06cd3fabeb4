package abtest
import ("fmt";"testing";"encoding/json";"os")
func TestScratch(t *testing.T){
 var in Input
 b, _ := os.ReadFile("/tmp/in.json")
 if err := json.Unmarshal(b, &in); err != nil { t.Fatal(err) }
 r, err := Analyze(in)
 if err != nil { t.Fatal(err) }
 out, _ := json.MarshalIndent(r, "", " ")
 fmt.Println(string(out))
}
