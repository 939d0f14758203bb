// The dashboard's one script: charts drawn as SVG from the JSON in data-points, the
// market page kept live over server-sent events, the operations page's reload.
function drawCharts(){for(const svg of document.querySelectorAll('svg[data-chart]')){
 const d=JSON.parse(svg.dataset.points||'{}');const W=600,H=220,P=34;const xs=d.x||[];
 svg.setAttribute('viewBox',`0 0 ${W} ${H}`);svg.innerHTML='';
 if(!xs.length){svg.innerHTML=`<text x="${W/2}" y="${H/2}" text-anchor="middle" fill="#6b7c84">no data yet</text>`;continue}
 const ys=(d.y||[]).concat(d.y2||[]).filter(v=>v>0);let lo=Math.min(...ys),hi=Math.max(...ys);if(hi===lo){hi+=1;lo-=1}
 const X=i=>P+(xs.length<2?0:(W-2*P)*i/(xs.length-1)),Y=v=>H-P-(H-2*P-40)*(v-lo)/(hi-lo);
 let s='';const vmax=Math.max(1,...(d.v||[0]));
 (d.v||[]).forEach((v,i)=>{const h=40*v/vmax;s+=`<rect x="${X(i)-2}" y="${H-P-h}" width="4" height="${h}" fill="#c8d8d2"/>`});
 const line=(arr,style)=>{const pts=arr.map((v,i)=>v>0?`${X(i)},${Y(v)}`:'').filter(Boolean).join(' ');return `<polyline fill="none" ${style} points="${pts}"/>`};
 s+=line(d.y||[],'stroke="#12463a" stroke-width="2"');if(d.y2)s+=line(d.y2,'stroke="#d08a1e" stroke-width="1.5" stroke-dasharray="4 3"');
 s+=`<text x="4" y="${Y(hi)+4}" font-size="11" fill="#4a5d66">${(hi/100).toFixed(2)}</text><text x="4" y="${Y(lo)+4}" font-size="11" fill="#4a5d66">${(lo/100).toFixed(2)}</text>`;
 s+=`<text x="${P}" y="${H-8}" font-size="11" fill="#4a5d66">${xs[0]}</text><text x="${W-P}" y="${H-8}" font-size="11" text-anchor="end" fill="#4a5d66">${xs[xs.length-1]}</text>`;
 if(d.label)s+=`<text x="${W-P}" y="14" font-size="11" text-anchor="end" fill="#4a5d66">${d.label}</text>`;svg.innerHTML=s}}
document.addEventListener('DOMContentLoaded',drawCharts);
document.addEventListener('DOMContentLoaded',()=>{const r=document.querySelector('[data-reload-ms]');if(r)setTimeout(()=>location.reload(),+r.dataset.reloadMs)});
document.addEventListener('DOMContentLoaded',()=>{const el=document.getElementById('live');if(!el||!window.EventSource)return;
 const es=new EventSource(el.dataset.src);es.onmessage=e=>{const d=JSON.parse(e.data);
  const yuan=f=>(f/100).toFixed(2),g=n=>n.toLocaleString('en-US');const max=Math.max(1,...d.bids.map(l=>l[1]),...d.asks.map(l=>l[1]));
  const rows=[];for(let i=0;i<Math.max(d.bids.length,d.asks.length);i++){const b=d.bids[i],a=d.asks[i];
   rows.push(`<tr><td class=num>${b?g(b[2]):''}</td><td class=num>${b?g(b[1]):''} <span class="bar b" style="width:${b?60*b[1]/max:0}px"></span></td><td class="num bid">${b?yuan(b[0]):''}</td><td class="num ask">${a?yuan(a[0]):''}</td><td><span class="bar a" style="width:${a?60*a[1]/max:0}px"></span> ${a?g(a[1]):''}</td><td class=num>${a?g(a[2]):''}</td></tr>`)}
  document.getElementById('book').innerHTML=rows.join('')||'<tr><td colspan=6 class=muted>empty book</td></tr>';
  const bb=document.querySelector('[data-key=best-bid]');if(bb){bb.dataset.value=d.bids.length?d.bids[0][0]:0;bb.textContent=d.bids.length?yuan(d.bids[0][0]):'-'}
  const ba=document.querySelector('[data-key=best-ask]');if(ba){ba.dataset.value=d.asks.length?d.asks[0][0]:0;ba.textContent=d.asks.length?yuan(d.asks[0][0]):'-'}
  document.getElementById('trades').innerHTML=d.trades.map(t=>`<tr><td>${t[0]}</td><td class=num>${yuan(t[1])}</td><td class=num>${g(t[2])}</td><td>${t[3]}</td></tr>`).join('')||'<tr><td colspan=4 class=muted>no trades yet</td></tr>';
  el.textContent='live: sequence '+d.sequence}});
